"""Decoding: colour modes by hand, failures recorded with a reason, pre-operations."""

import numpy as np
import pytest
from PIL import Image

from forensibench.data.images import ImageDecodeError, ImageSet, iter_batches, list_images, load_rgb
from forensibench.data.transforms import TransformSpec


def test_modes_convert_as_documented(tmp_path):
    Image.fromarray(np.full((4, 5), 77, np.uint8), "L").save(tmp_path / "g.png")
    assert load_rgb(tmp_path / "g.png").tolist() == np.full((4, 5, 3), 77).tolist()
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 0  # fully transparent red: alpha is dropped
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert load_rgb(tmp_path / "a.png")[0, 0].tolist() == [200, 0, 0]
    Image.fromarray(np.full((3, 3), 65535, np.uint16)).save(tmp_path / "16.png")
    assert load_rgb(tmp_path / "16.png")[0, 0].tolist() == [255, 255, 255]  # scaled, not clipped
    Image.fromarray(np.full((3, 3), 32896, np.uint16)).save(tmp_path / "16b.png")
    assert load_rgb(tmp_path / "16b.png")[0, 0].tolist() == [128, 128, 128]
    Image.new("CMYK", (2, 2), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    r, g, b = load_rgb(tmp_path / "c.jpg")[0, 0]
    assert r > 200 and g < 60 and b < 60


@pytest.mark.parametrize(
    "content, reason",
    [(b"", "empty file"), (b"hello, I am text", "not an image"), (None, "cannot decode")],
)
def test_undecodable_files_raise_with_reason(tmp_path, content, reason):
    p = tmp_path / "x.jpg"
    if content is None:  # a truncated JPEG
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(p, quality=90)
        p.write_bytes(p.read_bytes()[:300])
    else:
        p.write_bytes(content)
    with pytest.raises(ImageDecodeError, match=reason):
        load_rgb(p)


def test_iter_batches_records_failures_and_keeps_the_rest(tmp_path):
    good = []
    for i in range(5):
        Image.fromarray(np.full((8, 8, 3), i * 10, np.uint8)).save(tmp_path / f"{i}.png")
        good.append(tmp_path / f"{i}.png")
    (tmp_path / "bad.png").write_bytes(b"")
    paths = good[:2] + [tmp_path / "bad.png"] + good[2:]
    images = ImageSet(paths)
    seen = []
    for idx, x in iter_batches(images, TransformSpec(), batch_size=2):
        seen += idx.tolist()
        assert x.shape[1:] == (3, 8, 8)
    assert seen == [0, 1, 3, 4, 5]
    assert images.failures == {str(tmp_path / "bad.png"): "empty file (0 bytes)"}
    # views share failures; labels can be hidden
    assert images.without_labels().failures is images.failures
    assert (images.without_labels().labels == -1).all()


class _AddN:
    key = "add"

    def __call__(self, img, rng):
        return np.clip(img.astype(int) + rng.integers(1, 50), 0, 255).astype(np.uint8)


def test_pre_operations_are_seeded_per_image(tmp_path):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "b.png")
    s = ImageSet([tmp_path / "a.png", tmp_path / "b.png"]).with_pre(_AddN(), seed=3)
    first = [s.decode(i)[0, 0, 0] for i in range(2)]
    again = [s.subset([1, 0]).decode(i)[0, 0, 0] for i in range(2)][::-1]
    assert first == again  # independent of order
    assert s.pre_key == "add@seed3"


def test_list_images_selects_class_folders(tmp_path):
    for rel in ("cat/0_real/a.png", "cat/1_fake/b.PNG", "0_real/c.jpg", "x0_real/d.png", "0_real/notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    real = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path, "0_real")]
    assert real == ["0_real/c.jpg", "cat/0_real/a.png"]
    assert [p.name for p in list_images(tmp_path, "1_fake")] == ["b.PNG"]


def _mixed_sizes(folder, sizes):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate(sizes):
        p = folder / f"{i:02d}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def test_images_of_different_sizes_batch_by_size(tmp_path):
    # issue 14 (11): whole images (no crop) of different sizes crashed the batch ("stack expects each
    # tensor to be equal size"); now each batch holds images of one size, and every image comes out
    # exactly as it does alone
    sizes = [(32, 32), (36, 40), (32, 32), (20, 48), (36, 40), (32, 32), (17, 23)]
    paths = _mixed_sizes(tmp_path, sizes)
    paths.insert(3, tmp_path / "missing.png")
    images = ImageSet(paths)
    tf = TransformSpec()  # no resize, no crop: whole images
    alone = {int(i[0]): x[0] for i, x in iter_batches(images, tf, batch_size=1)}
    seen = []
    for idx, x in iter_batches(images, tf, batch_size=4):
        assert x.shape[0] == len(idx)  # one size per batch
        for j, i in enumerate(idx):
            assert np.array_equal(x[j].numpy(), alone[int(i)].numpy())
            seen.append(int(i))
    assert sorted(seen) == [i for i in range(len(paths)) if i != 3] and list(images.failures) == [str(paths[3])]
