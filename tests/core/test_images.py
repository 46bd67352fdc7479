"""Dataset images: compositing, exact box downsampling, modes, errors; atomic PNG saving."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.errors import InputFileError
from core.images import load_image, save_png, to_uint8
from tests.conftest import shared_path


def composite_reference(path, bg):
    rgba = np.asarray(Image.open(path).convert("RGBA"), dtype=np.float32) / 255.0
    a = rgba[:, :, 3:]
    return rgba[:, :, :3] * a + np.asarray(bg, dtype=np.float32) * (1 - a)


# -- the lego evaluation images ----------------------------------------------------------------------
def test_lego_composite_on_white_at_full_resolution():
    path = shared_path("datasets", "lego", "train", "r_0.png")
    img = load_image(path)
    assert img.shape == (800, 800, 3) and img.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0
    np.testing.assert_allclose(img, composite_reference(path, (1, 1, 1)), atol=1e-6)
    assert (img[0, 0] == 1.0).all()  # transparent corner becomes white


def test_lego_400_is_exact_2x2_box_average_of_the_composite():
    path = shared_path("datasets", "lego", "train", "r_8.png")
    img = load_image(path, size=(400, 400))
    ref = composite_reference(path, (1, 1, 1)).reshape(400, 2, 400, 2, 3).mean(axis=(1, 3))
    assert img.shape == (400, 400, 3) and img.dtype == np.float32
    np.testing.assert_allclose(img, ref, atol=1e-6)


def test_background_only_changes_transparent_pixels():
    path = shared_path("datasets", "lego", "train", "r_0.png")
    alpha = np.asarray(Image.open(path))[:, :, 3]
    white, black = load_image(path), load_image(path, background=(0.0, 0.0, 0.0))
    opaque = alpha == 255
    np.testing.assert_array_equal(white[opaque], black[opaque])
    diff = white - black
    np.testing.assert_allclose(diff[..., 0], 1.0 - alpha / 255.0, atol=1e-6)


# -- synthetic images ----------------------------------------------------------------------------------------
def test_straight_alpha_compositing_values(tmp_path):
    arr = np.zeros((2, 2, 4), dtype=np.uint8)
    arr[0, 0] = (200, 100, 0, 128)
    arr[0, 1] = (10, 20, 30, 255)
    arr[1, 0] = (255, 255, 255, 0)
    p = tmp_path / "a.png"
    Image.fromarray(arr, "RGBA").save(p)
    img = load_image(p, background=(0.0, 0.5, 1.0))
    a = 128 / 255
    np.testing.assert_allclose(img[0, 0], [200 / 255 * a, 100 / 255 * a + 0.5 * (1 - a), 1 - a], atol=1e-6)
    np.testing.assert_allclose(img[0, 1], [10 / 255, 20 / 255, 30 / 255], atol=1e-7)
    np.testing.assert_allclose(img[1, 0], [0.0, 0.5, 1.0], atol=1e-7)


def test_size_is_width_height_and_non_divisors_use_box_filter(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, size=(20, 40, 3), dtype=np.uint8)  # H=20, W=40
    p = tmp_path / "a.png"
    Image.fromarray(arr).save(p)
    half = load_image(p, size=(20, 10))
    assert half.shape == (10, 20, 3)
    np.testing.assert_allclose(half, (arr / 255.0).reshape(10, 2, 20, 2, 3).mean(axis=(1, 3)), atol=1e-6)
    odd = load_image(p, size=(15, 7))
    assert odd.shape == (7, 15, 3) and odd.dtype == np.float32
    assert abs(odd.mean() - arr.mean() / 255) < 0.02
    assert load_image(p, size=(40, 20)).shape == (20, 40, 3)
    flat = tmp_path / "flat.png"
    Image.new("RGB", (9, 7), (51, 102, 153)).save(flat)
    np.testing.assert_allclose(load_image(flat, size=(4, 3)), np.broadcast_to([0.2, 0.4, 0.6], (3, 4, 3)), atol=1e-6)
    with pytest.raises(ValueError):
        load_image(p, size=(0, 5))


@pytest.mark.parametrize("make,expected", [
    (lambda: Image.new("L", (3, 2), 51), [0.2, 0.2, 0.2]),
    (lambda: Image.new("LA", (3, 2), (0, 0)), [1.0, 1.0, 1.0]),
    (lambda: Image.fromarray(np.full((2, 3), 65535 // 5, dtype=np.uint16)), [0.2, 0.2, 0.2]),
    (lambda: Image.new("CMYK", (3, 2), (0, 0, 0, 0)), [1.0, 1.0, 1.0]),
])
def test_other_modes(tmp_path, make, expected):
    im = make()
    p = tmp_path / ("a.jpg" if im.mode == "CMYK" else "a.png")
    im.save(p)
    img = load_image(p)
    assert img.shape == (2, 3, 3) and img.dtype == np.float32
    np.testing.assert_allclose(img[0, 0], expected, atol=2e-3)


def test_palette_with_transparency(tmp_path):
    im = Image.new("P", (2, 1))
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.putpixel((1, 0), 1)
    im.info["transparency"] = 0
    p = tmp_path / "p.png"
    im.save(p, transparency=0)
    img = load_image(p, background=(0.0, 1.0, 0.0))
    np.testing.assert_allclose(img[0], [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], atol=1e-6)


def test_unreadable_images(tmp_path):
    with pytest.raises(InputFileError, match="image file not found") as err:
        load_image(tmp_path / "missing.png")
    assert err.value.path == tmp_path / "missing.png"
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not an image")
    with pytest.raises(InputFileError, match="not an image file"):
        load_image(junk)
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(good)
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(InputFileError, match="truncated or corrupt") as err:
        load_image(cut)
    assert str(err.value).startswith(str(cut))


# -- save_png --------------------------------------------------------------------------------------------------
def test_save_png_round_trips(tmp_path):
    rng = np.random.default_rng(1)
    u8 = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    save_png(tmp_path / "a.png", u8)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "a.png")), u8)
    save_png(tmp_path / "b.png", u8.astype(np.float32) / 255.0)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "b.png")), u8)
    np.testing.assert_array_equal(load_image(tmp_path / "b.png"), u8.astype(np.float32) / 255.0)
    rgba = rng.integers(0, 256, (4, 4, 4), dtype=np.uint8)
    save_png(tmp_path / "c.png", rgba)
    assert Image.open(tmp_path / "c.png").mode == "RGBA"
    save_png(tmp_path / "d.png", np.linspace(0, 1, 12).reshape(3, 4))
    assert Image.open(tmp_path / "d.png").mode == "L"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png", "c.png", "d.png"]  # no temp files


def test_save_png_overwrite_rules_and_bad_input(tmp_path):
    p = tmp_path / "a.png"
    save_png(p, np.zeros((2, 2, 3), np.float32))
    with pytest.raises(FileExistsError):
        save_png(p, np.ones((2, 2, 3), np.float32))
    save_png(p, np.ones((2, 2, 3), np.float32), overwrite=True)
    assert np.asarray(Image.open(p)).min() == 255
    with pytest.raises(ValueError, match="NaN or Inf"):
        save_png(tmp_path / "n.png", np.full((2, 2, 3), np.nan, np.float32))
    with pytest.raises(ValueError, match="must be"):
        save_png(tmp_path / "s.png", np.zeros((2, 2, 5), np.float32))
    with pytest.raises(ValueError, match="dtype"):
        save_png(tmp_path / "i.png", np.zeros((2, 2, 3), np.int64))
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.png"]


def test_to_uint8_rounds_and_clips():
    np.testing.assert_array_equal(to_uint8(np.array([-0.5, 0.0, 0.5 / 255, 0.499, 1.0, 7.0])),
                                  [0, 0, 1, 127, 255, 255])


def test_to_uint8_maps_nan_to_zero_and_clamps_infinities():
    img = np.array([[[np.nan, np.inf, -np.inf], [0.25, 0.5, 0.75]]], np.float32)  # [1, 2, 3]
    out = to_uint8(img)
    assert out.dtype == np.uint8 and out.shape == (1, 2, 3)
    np.testing.assert_array_equal(out, [[[0, 255, 0], [64, 128, 191]]])


def test_to_uint8_takes_torch_tensors_like_numpy():
    import torch

    g = np.random.default_rng(0)
    img = g.uniform(-0.2, 1.2, (5, 7, 3)).astype(np.float32)
    img[0, 0, 0] = np.nan
    want = (np.clip(np.nan_to_num(img, nan=0.0), 0, 1) * np.float32(255) + np.float32(0.5)).astype(np.uint8)
    t = torch.from_numpy(img).requires_grad_(True)
    out = to_uint8(t)
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.shape == (5, 7, 3)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(to_uint8(img), want)
    for dt in (torch.float16, torch.bfloat16, torch.float64):  # half types go through float32
        np.testing.assert_array_equal(to_uint8(torch.tensor([0.0, 0.5, 1.0, float("nan")], dtype=dt)), [0, 128, 255, 0])
    u8 = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    assert to_uint8(u8) is u8
    with pytest.raises(ValueError, match="dtype"):
        to_uint8(np.zeros((2, 2, 3), np.int64))
