import math

import pytest
import torch

from stages.rotation import rotate


@pytest.fixture
def images():
    generator = torch.Generator().manual_seed(0)
    return torch.rand(5, 1, 28, 28, generator=generator)


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("quarter_turns", [1, 2, 3])
def test_quarter_turns_match_rot90(images, interpolation, quarter_turns):
    angles = torch.full((len(images),), quarter_turns * math.pi / 2)
    rotated = rotate(images, angles, interpolation)
    expected = torch.rot90(images, quarter_turns, dims=(-2, -1))
    assert torch.allclose(rotated, expected, atol=1e-5)


def test_positive_angle_turns_counter_clockwise():
    image = torch.zeros(1, 1, 28, 28)
    image[0, 0, 2, 20:26] = 1.0  # a stroke near the top right
    rotated = rotate(image, torch.tensor([math.pi / 2]))
    # Counter-clockwise on screen moves the top-right corner to the top left.
    assert rotated[0, 0, :14, :14].sum() > 5
    assert rotated[0, 0, :14, 14:].sum() < 1e-4


def test_angles_are_radians(images):
    in_radians = rotate(images, torch.full((len(images),), math.pi / 2))
    degrees_value = rotate(images, torch.full((len(images),), 90.0))
    assert not torch.allclose(in_radians, degrees_value, atol=1e-3)


def test_zero_angle_is_identity(images):
    assert torch.allclose(rotate(images, torch.zeros(len(images))), images, atol=1e-5)


def test_per_image_angles(images):
    angles = torch.tensor([0.0, math.pi / 2, math.pi, 3 * math.pi / 2, 0.0])
    rotated = rotate(images, angles)
    for k, (image, out) in enumerate(zip(images, rotated)):
        quarter = [0, 1, 2, 3, 0][k]
        assert torch.allclose(out, torch.rot90(image, quarter, dims=(-2, -1)), atol=1e-5)


def test_composition_of_rotations(images):
    # Smooth content, so that two bilinear resamplings stay close to one.
    smooth = torch.nn.functional.avg_pool2d(images, 5, stride=1, padding=2)
    smooth[..., :6, :] = smooth[..., -6:, :] = 0
    smooth[..., :, :6] = smooth[..., :, -6:] = 0
    a, b = torch.full((5,), 0.4), torch.full((5,), 0.7)
    twice = rotate(rotate(smooth, a), b)
    once = rotate(smooth, a + b)
    assert (twice - once).abs().mean() < 0.01


def test_rejects_unknown_interpolation(images):
    with pytest.raises(ValueError, match="invalid interpolation 'cubic'"):
        rotate(images, torch.zeros(5), "cubic")
