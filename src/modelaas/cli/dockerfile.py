"""``modelaas dockerfile``: write a container image recipe for a model package."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("package_dir", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option(
    "--base",
    default="cpu",
    show_default=True,
    metavar="cpu|cuda|IMAGE",
    help="Base image: cpu (Python slim), cuda (NVIDIA CUDA runtime with cuDNN) or an image; "
    "pin one by digest with IMAGE@sha256:<digest>.",
)
@click.option(
    "--modelaas",
    "modelaas_spec",
    default=None,
    metavar="REQUIREMENT",
    help="How pip installs modelaas in the image (default: modelaas[postgres]==<this version>); "
    "e.g. a wheel copied into the package folder, which the image holds at /src: "
    "/src/modelaas-0.1.0-py3-none-any.whl[postgres].",
)
@click.option("--extras", default="", metavar="EXTRAS", help="Extras of the model package to install, e.g. gpu.")
@click.option("--model-name", default=None, help="Serve only this installed model.")
@click.option(
    "--output",
    "-o",
    default=None,
    metavar="PATH",
    help="Where to write it (default: PACKAGE_DIR/Dockerfile; - for stdout).",
)
@click.option("--force", is_flag=True, help="Replace an existing file.")
def dockerfile(
    package_dir: Path,
    base: str,
    modelaas_spec: str | None,
    extras: str,
    model_name: str | None,
    output: str | None,
    force: bool,
) -> int:
    """Write a Dockerfile that serves the model package in PACKAGE_DIR (default: here).

    The image runs as a non-root user, keeps its state in the volume /data, answers on
    port 5000, reports healthy once /readyz does, and stops cleanly on SIGTERM.
    """
    from importlib.metadata import version

    from modelaas.serve.container import ImageRecipe, render, write

    recipe = ImageRecipe(
        package_dir=package_dir,
        base=base,
        modelaas=modelaas_spec or f"modelaas[postgres]=={version('modelaas')}",
        package_extras=extras,
        model_name=model_name,
    )
    if output == "-":
        click.echo(render(recipe), nl=False)
        return 0
    path = write(recipe, Path(output) if output else package_dir / "Dockerfile", force=force)
    click.echo(f"Wrote {path}; build it with: docker build -t IMAGE {package_dir}", err=True)
    return 0
