"""Which frames of an animation are judged, and the tile they are laid out in (plain tables)."""

from __future__ import annotations

import pytest

from bot.adapters.images import frames


@pytest.mark.parametrize(
    ("n_frames", "hidden_default", "judged"),
    [
        (2, False, (0, 1)),
        (3, True, (1, 2)),  # an APNG's default image (frame 0) is never shown where it plays
        (2, True, (1,)),  # one animation frame behind a default image: that frame alone
        (300, False, (0, 100, 199, 299)),  # first, then spread evenly up to the last
        (301, True, (1, 101, 200, 300)),
    ],
)
def test_the_first_displayed_frame_and_frames_across_the_animation_are_judged(
    n_frames: int, hidden_default: bool, judged: tuple[int, ...]
) -> None:
    """sample(displayed_frames(...)): what a viewer sees, sampled up to the last frame."""
    shown = frames.displayed_frames(n_frames, hidden_default, canvas_pixels=100 * 100)
    assert frames.sample(shown) == judged


def test_a_long_large_animation_is_judged_within_the_decoding_bound() -> None:
    """Frames beyond DECODE_PIXELS of decoding are not sought (each seek decodes all before)."""
    canvas = 1000 * 1000
    shown = frames.displayed_frames(10_000, False, canvas)
    assert shown == range(frames.DECODE_PIXELS // canvas)
    assert frames.sample(shown)[-1] == len(shown) - 1


@pytest.mark.parametrize(
    ("count", "cell", "grid"),
    [
        (1, (200, 100), (1, 1)),
        (3, (200, 100), (1, 3)),
        (3, (100, 200), (3, 1)),
        (4, (9, 9), (2, 2)),
    ],
)
def test_tiles_have_no_empty_cell_and_stay_near_square(
    count: int, cell: tuple[int, int], grid: tuple[int, int]
) -> None:
    """Wide frames stack in a column, tall ones in a row, four make 2x2."""
    assert frames.layout(count, cell) == grid
