"""Pictures of maps: where the map is zero the overlay is the photo; percentiles clip outliers."""

from __future__ import annotations

import numpy as np

from worker.pictures import images as render


def test_overlay_leaves_unsalient_pixels_untouched() -> None:
    photo = np.random.default_rng(0).integers(0, 255, (10, 12, 3), dtype=np.uint8)
    saliency = np.zeros((10, 12), dtype=np.float32)
    saliency[2:4, 3:5] = 1.0
    heat = render.colorize(saliency, "inferno")
    out = render.overlay(photo, heat, 0.7, saliency)
    mask = saliency == 0
    assert np.array_equal(out[mask], photo[mask])
    assert not np.array_equal(out[~mask], photo[~mask])


def test_percentile_normalisation_clips_outliers() -> None:
    saliency = np.linspace(0, 1, 1000, dtype=np.float32)
    saliency[-1] = 100.0  # one outlier
    by_max = render.normalise(saliency)
    clipped = render.normalise(saliency, 99.0)
    assert by_max[500] < 0.01  # the outlier squashes everything else
    assert 0.45 < clipped[500] < 0.55 and clipped.max() == 1.0 and clipped.min() == 0.0
    assert np.array_equal(render.normalise(np.zeros(5)), np.zeros(5))


def test_fit_within_keeps_aspect() -> None:
    assert render.fit_within(4000, 3000, 1024) == (1024, 768)
    assert render.fit_within(100, 50, 1024) == (100, 50)


def test_grid_places_every_tile() -> None:
    tiles = [np.full((10, 4 + i, 3), i * 40, dtype=np.uint8) for i in range(5)]
    out = render.grid(tiles, columns=2, gap=2)
    assert out.shape == (3 * 10 + 2 * 2, 2 * 8 + 2, 3)
    assert (out[0:10, 0:4] == 0).all() and (out[24:34, 0:8] == 160).all()


def test_raw_values_keep_their_units_in_the_narrowest_type_that_holds_them() -> None:
    from worker.pictures.images import raw_values

    gradient = np.array([[0.0, 0.2], [3.5, 12.0]], dtype=np.float32)
    kept = raw_values(gradient)
    assert kept.dtype == np.float16 and np.allclose(kept, gradient, rtol=1e-3)  # not scaled to a maximum of 1
    tiny = gradient * 1e-6  # float16 would round these to zero or lose them to subnormals
    assert raw_values(tiny).dtype == np.float32 and np.array_equal(raw_values(tiny), tiny)
    huge = gradient * 1e5
    assert raw_values(huge).dtype == np.float32
