"""Dataset shortcut audit: do file metadata alone tell real from generated images?

For every set of a suite (the images a run would use, same sampling), each file's metadata are read
from its header (nothing is decoded): format, JPEG quality estimated from the quantisation tables,
chroma subsampling, width, height, aspect ratio, colour mode, file size, EXIF and ICC presence.
Reals and generated images are summarised side by side, and a trivial classifier (one-hot
categories + standardised numbers -> scikit-learn logistic regression, class-balanced) is
cross-validated on these metadata alone. Its out-of-fold AP is the set's *shortcut score*: when it
exceeds the threshold (default 0.9), a detector's AP on that set may measure the storage (format,
compression, size) rather than the image.

File size is left out of the classifier by default (`include_file_size`): for lossless formats it
is a function of the pixels (smooth images compress better), i.e. of what detectors are meant to
look at, not a storage decision. It is always reported side by side.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forensibench.core.files import display_path

# ITU-T T.81 (JPEG) Annex K, tables K.1 (luminance) and K.2 (chrominance), in natural (row-major)
# order, the order in which Pillow reports `Image.quantization`.
STD_LUMA = np.array(
    [
        16,
        11,
        10,
        16,
        24,
        40,
        51,
        61,
        12,
        12,
        14,
        19,
        26,
        58,
        60,
        55,
        14,
        13,
        16,
        24,
        40,
        57,
        69,
        56,
        14,
        17,
        22,
        29,
        51,
        87,
        80,
        62,
        18,
        22,
        37,
        56,
        68,
        109,
        103,
        77,
        24,
        35,
        55,
        64,
        81,
        104,
        113,
        92,
        49,
        64,
        78,
        87,
        103,
        121,
        120,
        101,
        72,
        92,
        95,
        98,
        112,
        100,
        103,
        99,
    ]
)
STD_CHROMA = np.full(64, 99)
STD_CHROMA[[0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 24, 25]] = [17, 18, 24, 47, 18, 21, 26, 66, 24, 26, 56, 47, 66]
SUBSAMPLING = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}


def ijg_tables(quality: int) -> np.ndarray:
    """[2, 64] luma and chroma tables that IJG libjpeg's `jpeg_set_quality(quality, TRUE)` writes.

    scale = 5000 / q (integer division) for q < 50, else 200 - 2q; entry = (base * scale + 50) / 100
    (integer division), clamped to [1, 255] (baseline).
    """
    q = min(max(int(quality), 1), 100)
    scale = 5000 // q if q < 50 else 200 - 2 * q
    base = np.stack([STD_LUMA, STD_CHROMA])
    return np.clip((base * scale + 50) // 100, 1, 255)


_ALL_QUALITIES = np.stack([ijg_tables(q) for q in range(1, 101)])  # [100, 2, 64]


def estimate_jpeg_quality(qtables: Mapping[int, Sequence[int]]) -> tuple[int, bool, float]:
    """(IJG quality 1-100 whose tables are closest, whether they match exactly, mean |difference|).

    `qtables` is Pillow's `Image.quantization` (table id -> 64 values in natural order); the luma
    table (0) and the first chroma table (1) are compared when present. Ties go to the lowest
    quality. Non-IJG encoders (cameras, Photoshop) give `exact=False` and the nearest quality.
    """
    ids = [i for i in (0, 1) if i in qtables]
    if not ids:
        raise ValueError("no quantisation table 0 or 1")
    actual = np.stack([np.asarray(qtables[i], dtype=np.int64) for i in ids])
    diff = np.abs(_ALL_QUALITIES[:, ids, :] - actual[None]).mean(axis=(1, 2))
    k = int(np.argmin(diff))
    return k + 1, bool(diff[k] == 0), float(diff[k])


def file_metadata(path: str | Path) -> dict[str, Any]:
    """Header metadata of one image file (not decoded); `error` is set when PIL cannot identify it."""
    from PIL import Image, JpegImagePlugin

    p = Path(path)
    rec: dict[str, Any] = {
        "format": "unreadable",
        "width": 0,
        "height": 0,
        "mode": "",
        "bytes": 0,
        "exif": False,
        "icc": False,
        "jpeg_quality": np.nan,
        "jpeg_standard_tables": None,
        "jpeg_subsampling": "",
        "error": None,
    }
    try:
        rec["bytes"] = p.stat().st_size
        with Image.open(p) as img:
            rec.update(format=img.format or "unknown", width=img.size[0], height=img.size[1], mode=img.mode)
            rec["exif"] = bool(len(img.getexif())) or "exif" in img.info
            rec["icc"] = bool(img.info.get("icc_profile"))
            if img.format == "JPEG":
                q, exact, _ = estimate_jpeg_quality(img.quantization)
                rec.update(jpeg_quality=q, jpeg_standard_tables=exact)
                rec["jpeg_subsampling"] = SUBSAMPLING.get(JpegImagePlugin.get_sampling(img), "other")
    except Exception as exc:  # noqa: BLE001 - any unreadable header is a recorded finding, not a crash
        rec["error"] = f"{type(exc).__name__}: {exc}"
    return rec


def metadata_frame(images, data_root: str | Path, progress: bool = False, memo: dict | None = None) -> pd.DataFrame:
    """One row per image of the ImageSet `images`: path (relative), label, and `file_metadata`."""
    it = images.paths
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=f"audit {images.name}", unit="file", leave=False)
    memo = {} if memo is None else memo
    rows = []
    for path, label in zip(it, images.labels):
        if path not in memo:
            memo[path] = file_metadata(path)
        rows.append({"path": display_path(path, Path(data_root)), "label": int(label), **memo[path]})
    df = pd.DataFrame(rows)
    df["aspect"] = np.where(df["height"] > 0, df["width"] / df["height"].where(df["height"] > 0, 1), np.nan)
    df["bits_per_pixel"] = np.where(
        df["width"] * df["height"] > 0, 8.0 * df["bytes"] / (df["width"] * df["height"]).clip(lower=1), np.nan
    )
    return df


CATEGORICAL = ["format", "mode", "dims", "jpeg_subsampling", "jpeg_q"]
NUMERIC = ["log_width", "log_height", "log_aspect", "quality", "standard_tables", "exif", "icc"]
FILE_SIZE = ["log_bytes", "bits_per_pixel"]


def features(meta: pd.DataFrame, include_file_size: bool = False) -> pd.DataFrame:
    """The classifier's input: categories as strings, numbers as floats (non-JPEGs: quality 100)."""
    jpeg = meta["format"] == "JPEG"
    f = pd.DataFrame(
        {
            "format": meta["format"].astype(str),
            "mode": meta["mode"].astype(str),
            "dims": meta["width"].astype(str) + "x" + meta["height"].astype(str),
            "jpeg_subsampling": meta["jpeg_subsampling"].astype(str),
            "jpeg_q": np.where(
                jpeg,
                "q"
                + meta["jpeg_quality"].fillna(0).astype(int).astype(str)
                + np.where(meta["jpeg_standard_tables"].eq(True), "", "~"),
                "none",
            ),
            "log_width": np.log2(meta["width"].clip(lower=1).astype(float)),
            "log_height": np.log2(meta["height"].clip(lower=1).astype(float)),
            "log_aspect": np.log2(meta["aspect"].astype(float)),
            "quality": np.where(jpeg, meta["jpeg_quality"], 100.0).astype(float),
            "standard_tables": np.where(jpeg, meta["jpeg_standard_tables"] == True, 1.0).astype(float),  # noqa: E712
            "exif": meta["exif"].astype(float),
            "icc": meta["icc"].astype(float),
        }
    )
    if include_file_size:
        f["log_bytes"] = np.log2(meta["bytes"].clip(lower=1).astype(float))
        f["bits_per_pixel"] = meta["bits_per_pixel"].astype(float)
    return f


def shortcut_score(
    meta: pd.DataFrame, seed: int = 0, include_file_size: bool = False, folds: int = 5
) -> dict[str, Any]:
    """Out-of-fold AP and AUROC of logistic regression on metadata alone (readable files only).

    Stratified k-fold (k = min(`folds`, size of the smaller class)); NaN with a reason when a class
    has fewer than 2 readable files. `chance_ap` is the share of generated images (a classifier that
    knows nothing gets that AP on average).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from forensibench.metrics import auroc, average_precision

    ok = meta[meta["error"].isna()]
    y = ok["label"].to_numpy()
    n_real, n_fake = int((y == 0).sum()), int((y == 1).sum())
    out: dict[str, Any] = {
        "shortcut_ap": np.nan,
        "shortcut_auroc": np.nan,
        "chance_ap": n_fake / len(y) if len(y) else np.nan,
        "folds": 0,
        "note": "",
    }
    k = min(folds, n_real, n_fake)
    if k < 2:
        out["note"] = "too few readable images per class for cross-validation"
        return out
    # One-hot over all files at once: a category absent from a training fold is an all-zero column
    # there, gets weight 0, and so is ignored at prediction (as OneHotEncoder(handle_unknown="ignore")).
    X = pd.get_dummies(features(ok, include_file_size), columns=CATEGORICAL, dtype=float).to_numpy(dtype=float)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, class_weight="balanced"))
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    prob = cross_val_predict(model, X, y, cv=cv, method="predict_proba")[:, 1]
    out.update(shortcut_ap=average_precision(y, prob), shortcut_auroc=auroc(y, prob), folds=k)
    return out


def _shares(values: pd.Series, top: int = 2) -> str:
    """ "A 60%, B 40%" for the most common values (and "+N more")."""
    if len(values) == 0:
        return "-"
    counts = values.value_counts()
    parts = [f"{v} {100 * c / len(values):.0f}%" for v, c in counts.head(top).items()]
    if len(counts) > top:
        parts.append(f"+{len(counts) - top} more")
    return ", ".join(parts)


def summarise(meta: pd.DataFrame) -> dict[str, Any]:
    """Side-by-side summary of one class of one set (all values JSON-friendly)."""
    ok = meta[meta["error"].isna()]
    jpeg = ok[ok["format"] == "JPEG"]
    q = jpeg["jpeg_quality"].astype(int).astype(str).radd("q") + np.where(jpeg["jpeg_standard_tables"] == True, "", "~")  # noqa: E712
    dims = ok["width"].astype(str) + "x" + ok["height"].astype(str)
    n = len(ok)
    return {
        "n": int(len(meta)),
        "unreadable": int(meta["error"].notna().sum()),
        "formats": _shares(ok["format"], 3),
        "jpeg_share": float(len(jpeg) / n) if n else np.nan,
        "jpeg_quality": _shares(q) if len(jpeg) else "-",
        "jpeg_quality_median": float(jpeg["jpeg_quality"].median()) if len(jpeg) else np.nan,
        "jpeg_nonstandard_share": float((jpeg["jpeg_standard_tables"] != True).mean()) if len(jpeg) else np.nan,  # noqa: E712
        "jpeg_subsampling": _shares(jpeg["jpeg_subsampling"]) if len(jpeg) else "-",
        "sizes": _shares(dims),
        "distinct_sizes": int(dims.nunique()),
        "width_median": float(ok["width"].median()) if n else np.nan,
        "height_median": float(ok["height"].median()) if n else np.nan,
        "aspect_median": float(ok["aspect"].median()) if n else np.nan,
        "aspect_min": float(ok["aspect"].min()) if n else np.nan,
        "aspect_max": float(ok["aspect"].max()) if n else np.nan,
        "modes": _shares(ok["mode"]),
        "kb_median": float(ok["bytes"].median() / 1024) if n else np.nan,
        "bits_per_pixel_median": float(ok["bits_per_pixel"].median()) if n else np.nan,
        "exif_share": float(ok["exif"].mean()) if n else np.nan,
        "icc_share": float(ok["icc"].mean()) if n else np.nan,
    }


@dataclass
class AuditResult:
    suite: str
    data_root: str
    threshold: float
    include_file_size: bool
    seed: int
    sets: list[dict[str, Any]]  # per set: set, shortcut_ap, ..., flagged, real {...}, fake {...}
    files: pd.DataFrame  # per file metadata (set, path, label, ...)

    @property
    def flagged(self) -> list[str]:
        return [s["set"] for s in self.sets if s["flagged"]]

    def to_json(self) -> str:
        def clean(v):
            if isinstance(v, float) and not np.isfinite(v):
                return None
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, (np.floating, np.integer, np.bool_)):
                return clean(v.item())
            return v

        body = {
            "suite": self.suite,
            "data_root": self.data_root,
            "threshold": self.threshold,
            "seed": self.seed,
            "classifier": "logistic regression (class-balanced) on one-hot "
            + ", ".join(CATEGORICAL)
            + " and standardised "
            + ", ".join(NUMERIC + (FILE_SIZE if self.include_file_size else []))
            + "; stratified k-fold out-of-fold AP",
            "flagged": self.flagged,
            "sets": [clean(s) for s in self.sets],
        }
        return json.dumps(body, indent=2) + "\n"

    def to_frame(self) -> pd.DataFrame:
        """One row per set: the shortcut score, then every summary field as real_* and fake_*."""
        rows = []
        for s in self.sets:
            row = {k: v for k, v in s.items() if k not in ("real", "fake")}
            for cls in ("real", "fake"):
                row.update({f"{cls}_{k}": v for k, v in s[cls].items()})
            rows.append(row)
        return pd.DataFrame(rows)


def audit(
    suite,
    data_root: str | Path,
    datasets: list[str] | None = None,
    sampling=None,
    threshold: float = 0.9,
    seed: int = 0,
    include_file_size: bool = False,
    progress: bool = False,
) -> AuditResult:
    """Audit the sets of `suite` (a Suite or its name) under `data_root`; sets without images are skipped."""
    from forensibench.data.suites import load_suite

    s = load_suite(suite) if isinstance(suite, str) else suite
    root = Path(data_root)
    memo: dict = {}
    sets, frames = [], []
    for sdef in s.select(datasets):
        images, _ = s.images(root, sdef.key, sampling)
        if len(images) == 0:
            continue
        meta = metadata_frame(images, root, progress=progress, memo=memo)
        score = shortcut_score(meta, seed=seed, include_file_size=include_file_size)
        flagged = bool(np.isfinite(score["shortcut_ap"]) and score["shortcut_ap"] > threshold)
        sets.append(
            {
                "set": sdef.key,
                "n_real": int((meta["label"] == 0).sum()),
                "n_fake": int((meta["label"] == 1).sum()),
                **score,
                "flagged": flagged,
                "real": summarise(meta[meta["label"] == 0]),
                "fake": summarise(meta[meta["label"] == 1]),
            }
        )
        frames.append(meta.assign(set=sdef.key))
    files = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(files):
        files = files[["set", *[c for c in files.columns if c != "set"]]]
    return AuditResult(s.name, str(root), threshold, include_file_size, seed, sets, files)


def render(result: AuditResult) -> str:
    """A plain-text table: each set on two lines (real, generated) with its shortcut score."""
    from tabulate import tabulate

    def num(v, fmt):
        return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, fmt)

    body = []
    for s in result.sets:
        for cls in ("real", "fake"):
            c = s[cls]
            first = cls == "real"
            body.append(
                [
                    s["set"] if first else "",
                    "real" if first else "generated",
                    c["n"],
                    c["formats"],
                    c["jpeg_quality"],
                    c["sizes"],
                    num(c["aspect_median"], ".2f"),
                    c["modes"],
                    num(c["kb_median"], ".1f"),
                    num(100 * c["exif_share"], ".0f") + "%" if c["n"] else "-",
                    num(s["shortcut_ap"], ".3f") if first else "",
                    ("FLAGGED" if s["flagged"] else "ok") if first else "",
                ]
            )
    head = [
        "set",
        "class",
        "n",
        "formats",
        "JPEG quality",
        "sizes",
        "aspect",
        "modes",
        "median KB",
        "EXIF",
        "shortcut AP",
        "",
    ]
    text = tabulate(body, headers=head, tablefmt="simple", disable_numparse=True)
    feats = "format, JPEG quality/tables/subsampling, size, aspect, mode, EXIF, ICC" + (
        ", file size" if result.include_file_size else ""
    )
    lines = [
        f"Shortcut audit of {result.suite} under {result.data_root}",
        "",
        text,
        "",
        f"shortcut AP: out-of-fold AP of a logistic regression on metadata alone ({feats}); "
        f'chance = share of generated images; flagged above {result.threshold:g}. "~": non-IJG quantisation tables.',
    ]
    if result.flagged:
        lines.append(
            f"FLAGGED ({len(result.flagged)}): {', '.join(result.flagged)}: metadata alone separate real from "
            "generated images; "
            "a detector's AP there may measure the file format or storage, not the image."
        )
    else:
        lines.append("no set flagged.")
    return "\n".join(lines) + "\n"
