"""The environment training processes start with."""

from modelaas.jobs.backends.process import child_env
from modelaas.settings import Settings


def test_gpu_memory_growth_unless_set(monkeypatch, tmp_path):
    monkeypatch.delenv("TF_FORCE_GPU_ALLOW_GROWTH", raising=False)
    assert child_env(Settings(data_dir=tmp_path))["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    monkeypatch.setenv("TF_FORCE_GPU_ALLOW_GROWTH", "false")
    assert child_env(Settings(data_dir=tmp_path))["TF_FORCE_GPU_ALLOW_GROWTH"] == "false"


def test_training_gpus_can_be_kept_apart(monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert child_env(Settings(data_dir=tmp_path))["CUDA_VISIBLE_DEVICES"] == "0"
    env = child_env(Settings(data_dir=tmp_path, train_cuda_visible_devices="1"))
    assert env["CUDA_VISIBLE_DEVICES"] == "1"


def test_settings_reach_the_training(tmp_path):
    env = child_env(Settings(data_dir=tmp_path, model="pkg.mod:Model", train_nice=5))
    assert Settings.load(environ=env) == Settings(data_dir=tmp_path, model="pkg.mod:Model", train_nice=5)
