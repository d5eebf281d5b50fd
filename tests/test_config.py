"""Tests of the profile dataclasses beyond what loading them in every other test shows."""
import subprocess
import sys
from pathlib import Path

import pytest

from fmsnb.cli import main
from fmsnb.config import Profile, SamplingConfig, load_profile


def test_data_file_is_absolute_as_given_or_under_the_data_root():
    with_root = Profile("p", data_root="/data")
    assert with_root.data_file("t2m/finest.tar") == Path("/data/t2m/finest.tar")
    assert with_root.data_file("/elsewhere/clip.pt") == Path("/elsewhere/clip.pt")
    without = Profile("p")
    assert without.data_file("/elsewhere/clip.pt") == Path("/elsewhere/clip.pt")
    assert without.data_file("t2m/finest.tar") is None


def test_reading_a_profile_imports_no_heavy_module():
    heavy = ("torch", "scipy", "sklearn", "matplotlib", "pandas")
    code = ("import sys, fmsnb.config; "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_token_style_may_have_its_own_grade_guidance():
    same = SamplingConfig(grade_guidance=8.0, grade_guidance_interval=0.6)
    assert same.grade_guidance_for("textual") == same.grade_guidance_for("token") == (8.0, 0.6)
    own = SamplingConfig(grade_guidance=8.0, token_grade_guidance=6.0,
                         token_grade_guidance_interval=0.3)
    assert own.grade_guidance_for("numerical") == (8.0, 1.0)
    assert own.grade_guidance_for("token") == (6.0, 0.3)


def profile_with(tmp_path, text: str) -> Path:
    (tmp_path / "params").mkdir(exist_ok=True)
    (tmp_path / "params" / "p.yml").write_text(text)
    return tmp_path


def test_numbers_yaml_reads_as_text_are_numbers_where_a_float_is_expected(tmp_path):
    # issue 11, defect 5: YAML 1.1 reads 2e-4 (no dot) as the string "2e-4"
    root = profile_with(tmp_path, "pretrain: {lr: 2e-4, ema_decay: 1e-1}\nsampling: {guidance: 3}\n")
    cfg = load_profile("p", root=root)
    assert cfg.pretrain.lr == 2e-4 and cfg.pretrain.ema_decay == 0.1
    assert cfg.sampling.guidance == 3.0 and isinstance(cfg.sampling.guidance, float)
    assert cfg.pretrain.grad_clip is None and cfg.model.latent_dim > 0     # defaults kept


# Every bad profile (issue 11, defect 5) with what the message must say after the file name.
BAD_PROFILES = [
    ("pretrain: {lr: 2e-4x}", "[pretrain] lr: got '2e-4x' (str), expected a finite number"),
    ("pretrain: {steps: twenty}", "[pretrain] steps: got 'twenty' (str), expected int"),
    ('model: {latent_dim: "32"}', "[model] latent_dim: got '32' (str), expected int"),
    ("model: {layers: 1.5}", "[model] layers: got 1.5 (float), expected int"),
    ("seed: zero", "[top level] seed: got 'zero' (str), expected int"),
    ("fms: {views: front}", "[fms] views: got 'front' (str), expected list"),
    ("fms: {views: [top]}", "[fms] views: got ['top'], expected distinct names from"),
    ("fms: {mirror: 'yes'}", "[fms] mirror: got 'yes' (str), expected bool"),
    ("sampling: {guidance: .nan}", "[sampling] guidance: got nan (float), expected a finite"),
    ("sampling: {grade_guidance_interval: 0}",
     "[sampling] grade_guidance_interval must lie in (0, 1], got 0.0"),
    ("sampling: {token_grade_guidance_interval: 1.5}",
     "[sampling] token_grade_guidance_interval must lie in (0, 1], got 1.5"),
    ("pretrain: {ema_decay: high}", "[pretrain] ema_decay: got 'high' (str), expected float or null"),
    ("pretrain: {lr: -1e-4}", "[pretrain] bad TrainConfig: lr must be >= 0"),
    ("bench: {model: {heads: two}}", "[bench.model] heads: got 'two' (str), expected int"),
    ("model: [16, 1]", "[model] must be a mapping of keys to values, got [16, 1] (list)"),
    ("model: {latent_dim: [}", "not valid YAML"),
    ("- model\n- pretrain", "a profile is a mapping of sections"),
    ("pretrain: {stpes: 3}", "[pretrain] unknown key(s) ['stpes']"),
    ("diffusion: {steps: 10}\nsampling: {sampler: ddpm}",          # DDIM's default 50 steps
     "[top level] sampling.steps (DDIM steps) must lie in 1..diffusion.steps = 10, got 50"),
]


@pytest.mark.parametrize("text, message", BAD_PROFILES)
def test_a_bad_profile_names_file_section_key_value_and_type(tmp_path, text, message):
    root = profile_with(tmp_path, text + "\n")
    with pytest.raises(ValueError) as err:
        load_profile("p", root=root)
    assert str(err.value).startswith(str(root / "params" / "p.yml") + ": ")
    assert message in str(err.value)


def test_an_unknown_section_or_key_is_refused_naming_file_and_key(tmp_path):
    root = profile_with(tmp_path, "pretrian: {steps: 3}\n")
    with pytest.raises(ValueError) as err:
        load_profile("p", root=root)
    assert str(err.value).startswith(f"{root / 'params' / 'p.yml'}: [top level] unknown key(s) "
                                     "['pretrian'] for Profile; known: [")
    root = profile_with(tmp_path, "bench: {model: {hedas: 2}}\n")
    with pytest.raises(ValueError) as err:
        load_profile("p", root=root)
    assert str(err.value).startswith(f"{root / 'params' / 'p.yml'}: [bench.model] unknown "
                                     "key(s) ['hedas'] for MDMConfig; known: [")


def test_a_profile_named_unlike_its_file_is_refused_naming_both(tmp_path):
    root = profile_with(tmp_path, "name: q\n")
    with pytest.raises(ValueError) as err:
        load_profile("p", root=root)
    assert str(err.value) == (f"{root / 'params' / 'p.yml'}: name 'q' does not match the file "
                              "name 'p'")
    assert load_profile("p", root=profile_with(tmp_path, "name: p\n")).name == "p"


def test_the_command_line_exits_2_on_a_bad_profile(tmp_path, monkeypatch, capsys):
    root = profile_with(tmp_path, "name: p\npretrain: {steps: twenty}\n")
    monkeypatch.setenv("FMSNB_ROOT", str(root))
    monkeypatch.setenv("FMSNB_RUNS", str(tmp_path / "runs"))
    assert main(["data", "--profile", "p", "--quiet"]) == 2
    assert "[pretrain] steps: got 'twenty' (str), expected int" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()                  # refused before any corpus is made
