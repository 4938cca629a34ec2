"""Keyframes -> crop boxes: interpolation, holding, rounding, clamping, bad input."""

from __future__ import annotations

import pytest

from core.errors import InputError
from core.job import Keyframe
from workers.crop import CropBox, crop_box_at, crop_boxes, validate_keyframes

W, H = 200, 100
PAIR = (Keyframe(1.0, 10, 20, 40, 30), Keyframe(3.0, 50, 40, 80, 50))


def test_empty_keyframes_give_the_full_frame():
    assert crop_box_at((), 5.0, W, H) == CropBox(0, 0, W, H)
    assert crop_boxes([], [0.0, 1.0], 64, 48) == [CropBox(0, 0, 64, 48)] * 2


def test_midpoint_interpolates_every_field():
    assert crop_box_at(PAIR, 2.0, W, H) == CropBox(30, 30, 60, 40)
    assert crop_box_at(PAIR, 1.5, W, H) == CropBox(20, 25, 50, 35)


def test_exact_keyframe_times_give_their_boxes():
    assert crop_box_at(PAIR, 1.0, W, H) == CropBox(10, 20, 40, 30)
    assert crop_box_at(PAIR, 3.0, W, H) == CropBox(50, 40, 80, 50)


def test_held_before_first_and_after_last():
    assert crop_box_at(PAIR, 0.0, W, H) == CropBox(10, 20, 40, 30)
    assert crop_box_at(PAIR, 99.0, W, H) == CropBox(50, 40, 80, 50)


def test_single_keyframe_holds_everywhere():
    one = [Keyframe(2.0, 5, 6, 7, 8)]
    assert crop_boxes(one, [0.0, 2.0, 10.0], W, H) == [CropBox(5, 6, 7, 8)] * 3


def test_rounding_is_half_up_to_whole_pixels():
    keys = [Keyframe(0.0, 0, 0, 10, 10), Keyframe(1.0, 1, 3, 11, 13)]
    # at 0.5: x 0.5 -> 1, y 1.5 -> 2, w 10.5 -> 11, h 11.5 -> 12 (not banker's rounding)
    assert crop_box_at(keys, 0.5, W, H) == CropBox(1, 2, 11, 12)
    # at 0.25: x 0.25 -> 0, y 0.75 -> 1
    assert crop_box_at(keys, 0.25, W, H) == CropBox(0, 1, 10, 11)


def test_three_keyframes_use_the_right_neighbours():
    keys = [Keyframe(0.0, 0, 0, 20, 20), Keyframe(1.0, 100, 0, 20, 20), Keyframe(2.0, 100, 80, 20, 20)]
    assert crop_boxes(keys, [0.5, 1.5], W, H) == [CropBox(50, 0, 20, 20), CropBox(100, 40, 20, 20)]


def test_partly_outside_box_is_shifted_inside_not_shrunk():
    keys = [Keyframe(0.0, -15, 90, 40, 30)]
    assert crop_box_at(keys, 0.0, W, H) == CropBox(0, 70, 40, 30)
    keys = [Keyframe(0.0, 190, -5, 40, 30)]
    assert crop_box_at(keys, 0.0, W, H) == CropBox(160, 0, 40, 30)


def test_full_frame_keyframe_is_allowed():
    assert crop_box_at([Keyframe(0.0, 0, 0, W, H)], 1.0, W, H) == CropBox(0, 0, W, H)


def test_crop_boxes_matches_crop_box_at():
    times = [i / 10 for i in range(40)]
    assert crop_boxes(PAIR, times, W, H) == [crop_box_at(PAIR, t, W, H) for t in times]


@pytest.mark.parametrize(
    "keys, fragment",
    [
        ([Keyframe(0.0, 0, 0, 0, 10)], "must be positive"),
        ([Keyframe(0.0, 0, 0, 10, -1)], "must be positive"),
        ([Keyframe(0.0, 0, 0, W + 1, 10)], "larger than the frame"),
        ([Keyframe(0.0, 0, 0, 10, H + 2)], "larger than the frame"),
        ([Keyframe(2.0, 0, 0, 10, 10), Keyframe(1.0, 0, 0, 10, 10)], "comes before"),
        ([Keyframe(1.0, 0, 0, 10, 10), Keyframe(1.0, 5, 0, 10, 10)], "duplicates"),
        ([Keyframe(0.0, W, 0, 10, 10)], "entirely outside"),
        ([Keyframe(0.0, 0, H + 5, 10, 10)], "entirely outside"),
        ([Keyframe(0.0, -10, 0, 10, 10)], "entirely outside"),
        ([Keyframe(0.0, 0, -30, 10, 30)], "entirely outside"),
        ([Keyframe(-1.0, 0, 0, 10, 10)], "time"),
        ([Keyframe(float("nan"), 0, 0, 10, 10)], "time"),
    ],
)
def test_bad_keyframes_raise_input_error(keys, fragment):
    with pytest.raises(InputError, match=fragment) as info:
        validate_keyframes(keys, W, H)
    assert "\n" not in str(info.value)
    with pytest.raises(InputError):
        crop_box_at(keys, 0.0, W, H)
    with pytest.raises(InputError):
        crop_boxes(keys, [0.0], W, H)


def test_bad_frame_size_raises_input_error():
    with pytest.raises(InputError, match="frame size"):
        crop_box_at((), 0.0, 0, 10)


def test_non_finite_time_raises_input_error():
    with pytest.raises(InputError):
        crop_box_at(PAIR, float("nan"), W, H)
