"""Registry: specs, parameters, unknown names, duplicates, lazy imports."""

import subprocess
import sys
import textwrap
from dataclasses import dataclass, field

import numpy as np
import pytest

from forensibench.api import registry
from forensibench.api.detector import Detector, Training
from forensibench.api.registry import RegistryError
from forensibench.data.transforms import TransformSpec


@dataclass
class _P:
    mode: str = field(default="N+P", metadata={"help": "training mode"})
    dr: int | None = 128
    layers: tuple[str, ...] = ("layer1", "layer2")
    lr: float = 1e-4
    l2norm: bool = True


class _Toy(Detector):
    name = "toy-registry-test"
    training = Training.NATURAL
    threshold = "validation"
    Params = _P

    def transform(self, train=False):
        return TransformSpec(crop=8)

    def fit(self, train):
        return self

    def score(self, images):
        return np.zeros(len(images))


@pytest.fixture
def toy():
    registry.register(_Toy)
    yield _Toy
    registry.unregister("toy-registry-test")


def test_parse_spec_splits_on_key_commas():
    name, raw = registry.parse_spec("padim:layers=layer1,layer2,backbone=resnet18")
    assert name == "padim"
    assert raw == {"layers": "layer1,layer2", "backbone": "resnet18"}
    assert registry.parse_spec("clip-flow:mode=N+P") == ("clip-flow", {"mode": "N+P"})
    assert registry.parse_spec(" freqspec ") == ("freqspec", {})


@pytest.mark.parametrize("bad", ["x:novalue", "x:=3", "x:a=1,a=2", ":a=1"])
def test_malformed_specs(bad):
    with pytest.raises(RegistryError):
        registry.parse_spec(bad)


def test_values_are_typed_from_the_params(toy):
    det = registry.create("toy-registry-test:mode=P,dr=none,layers=layer3+layer4,lr=0.5,l2norm=false")
    assert det.params == _P(mode="P", dr=None, layers=("layer3", "layer4"), lr=0.5, l2norm=False)
    assert registry.create("toy-registry-test:layers=a,b").params.layers == ("a", "b")
    with pytest.raises(RegistryError, match="expected an integer"):
        registry.create("toy-registry-test:dr=many")
    with pytest.raises(RegistryError, match="expected true or false"):
        registry.create("toy-registry-test:l2norm=maybe")


def test_unknown_key_lists_valid_keys_with_defaults(toy):
    with pytest.raises(RegistryError) as exc:
        registry.create("toy-registry-test:epoch=3")
    msg = str(exc.value)
    assert "'epoch'" in msg
    for text in ("mode=N+P", "dr=128", "layers=layer1+layer2", "lr=0.0001", "l2norm=true"):
        assert text in msg


def test_canonical_spec_drops_defaults_and_sorts(toy):
    assert registry.canonical("toy-registry-test:mode=N+P") == "toy-registry-test"
    assert registry.canonical("toy-registry-test:lr=0.5,mode=P") == "toy-registry-test:lr=0.5,mode=P"
    assert registry.create("toy-registry-test:mode=P,lr=0.5").spec == "toy-registry-test:lr=0.5,mode=P"


def test_unknown_detector_suggests_close_names():
    with pytest.raises(RegistryError, match="Did you mean 'freqspec'"):
        registry.get("freqspek")


def test_duplicate_in_process_name_is_an_error(toy):
    class Other(_Toy):
        pass

    with pytest.raises(RegistryError, match="already registered"):
        registry.register(Other, name="toy-registry-test")
    with pytest.raises(RegistryError, match="already registered by the entry point"):
        registry.register(Other, name="freqspec")


def _fake_dist(site, dist, entry):
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[forensibench.detectors]\n{entry}\n")


def test_duplicate_entry_point_names_are_an_error(tmp_path):
    _fake_dist(tmp_path, "plugin_a", "dup = plugin_a:A")
    _fake_dist(tmp_path, "plugin_b", "dup = plugin_b:B")
    code = (
        "from forensibench.api import registry\ntry:\n    registry.available()\n"
        "except registry.RegistryError as e:\n    print('ERR', e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(tmp_path), "PATH": ""}
    )
    assert "ERR detector name 'dup' is registered twice" in out.stdout, out.stderr
    assert "plugin_a" in out.stdout and "plugin_b" in out.stdout


def test_listing_imports_no_detector_module_and_describe_no_heavy_library():
    code = textwrap.dedent(
        """
        import sys
        from forensibench.api import registry
        names = registry.available()
        imported = [m for m in sys.modules if m.startswith('forensibench.detectors.')]
        assert not imported, 'available() imported a detector'
        registry.describe_all()
        heavy = [m for m in ('anomalib', 'lightning', 'open_clip', 'torch') if m in sys.modules]
        print('HEAVY', heavy)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout


def test_list_command(invoke):
    res = invoke("list")
    assert res.exit_code == 0
    assert "freqspec" in res.output and "natural+generated" in res.output


class _NoScore(Detector):
    """Declares Params and training, implements transform and fit: forgets threshold and score."""

    name = "toy-no-score"
    training = Training.NATURAL
    Params = _P

    def transform(self, train=False):
        return TransformSpec(crop=8)

    def fit(self, train):
        return self


def test_a_class_missing_part_of_the_contract_is_refused_at_registration():
    with pytest.raises(RegistryError) as exc:
        registry.register(_NoScore)
    msg = str(exc.value)
    assert "'_NoScore' cannot be registered: it does not define threshold, score" in msg
    assert "\n" not in msg and msg.count(". ") == 0  # one sentence
    assert "toy-no-score" not in registry.available()
    with pytest.raises(TypeError):  # and abc refuses to build one
        _NoScore()


@pytest.mark.parametrize(
    "attr, value, words",
    [
        ("threshold", "maybe", "threshold is 'maybe', not one of 'probability', 'validation'"),
        ("training", "natural", "training is 'natural', not a forensibench Training"),
        ("Params", dict, "Params is <class 'dict'>, not a dataclass"),
    ],
)
def test_declarations_of_the_wrong_kind_are_refused(attr, value, words):
    bad = type("_Bad", (_Toy,), {attr: value, "name": "toy-bad"})
    with pytest.raises(RegistryError, match=words):
        registry.register(bad)


def test_an_entry_point_missing_part_of_the_contract_is_refused_when_loaded(tmp_path):
    _fake_dist(tmp_path, "plugin_c", "half = plugin_c:Half")
    (tmp_path / "plugin_c.py").write_text(
        textwrap.dedent(
            """
            from dataclasses import dataclass
            from forensibench.api.detector import Detector, Training

            @dataclass
            class P:
                k: int = 1

            class Half(Detector):
                Params = P
                training = Training.NATURAL
                threshold = "probability"

                def fit(self, train):
                    return self
            """
        )
    )
    code = textwrap.dedent(
        """
        from forensibench.api import registry
        try:
            registry.get("half")
        except registry.RegistryError as e:
            print("ERR", e)
        row = [r for r in registry.describe_all() if r["name"] == "half"][0]
        print("LIST", row["paper_rows"])
        print("OTHERS", "freqspec" in registry.available())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(tmp_path)}
    )
    assert (
        "ERR entry point half = 'plugin_c:Half' cannot be registered: it does not define transform, score" in out.stdout
    ), out.stdout + out.stderr
    assert "LIST cannot import: entry point half" in out.stdout  # `forensibench list` shows why, and the rest
    assert "OTHERS True" in out.stdout
