"""``python -m modelaas``.

The import is inside the guard: serving processes import this module again (as their
main module) and need none of the command line.
"""

if __name__ == "__main__":
    from modelaas.cli import main

    main()
