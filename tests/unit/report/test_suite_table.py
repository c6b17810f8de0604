"""`suite_table`'s note on detectors that did not train as the suite's protocol trains."""

from forensibench.report.tables import _off_protocol


def _rec(training, params=None, labelled=""):
    return {"describe": {"training": training, "params": params or {}}, "training_data": {"labelled": labelled}}


def test_off_protocol_names_what_each_detector_trained_on():
    dets = {
        "a": _rec("natural+generated", {"train_suite": "genimage-sdv14-train"}),
        "b": _rec("natural+generated", {"train_suite": "progan-train"}),
        "c": _rec("natural+generated", {}),  # a supervised detector without the parameter: progan-train
        "d": _rec("natural+generated", {"train_suite": "genimage-sdv14-train"}, "/x (0_real/1_fake folders): 2 real"),
        "e": _rec("natural"),
        "f": _rec("none"),
    }
    assert _off_protocol(dets, "genimage-sdv14-train") == {
        "b": "progan-train",
        "c": "progan-train",
        "d": "--labelled-train folder",
        "e": "one-class, natural images",
        "f": "released weights",
    }
    assert _off_protocol(dets, None) == {}
