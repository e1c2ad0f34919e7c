"""What each kind writes, checked on its own (found by the mutation run: `resample`, the zero
vectors' shape and the error messages were never exercised)."""

import numpy as np
import pytest
import torch

from residual_widgets.interventions import replacement_values

R, P, D = 3, 4, 5
CLEAN = torch.arange(R * P * D, dtype=torch.float32).reshape(R, P, D)
SOURCE = -CLEAN
CELLS = [(0, 1), (2, 3)]


def test_zero_is_one_zero_vector_per_cell():
    v = replacement_values("zero", "resid", CELLS, CLEAN)
    assert v.shape == (2, D) and v.dtype == torch.float32 and not v.any()


@pytest.mark.parametrize("kind", ["patch", "resample"])
def test_patch_and_resample_copy_the_source_cells(kind):
    v = replacement_values(kind, "resid", CELLS, CLEAN, source=SOURCE)
    assert torch.equal(v, torch.stack([SOURCE[0, 1], SOURCE[2, 3]]))
    with pytest.raises(ValueError, match=rf"kind='{kind}' needs a source prompt"):
        replacement_values(kind, "resid", CELLS, CLEAN)


def test_set_takes_one_vector_or_one_per_cell_and_refuses_bad_values_in_words():
    one = replacement_values("set", "resid", CELLS, CLEAN, value=np.ones(D, np.float64))
    assert one.shape == (2, D) and one.dtype == torch.float32 and (one == 1).all()
    each = replacement_values("set", "resid", CELLS, CLEAN, value=[[1.0] * D, [2.0] * D])
    assert each[1].tolist() == [2.0] * D
    with pytest.raises(ValueError, match=r"kind='set' needs value="):
        replacement_values("set", "resid", CELLS, CLEAN)
    with pytest.raises(ValueError, match=r"value has shape \(3,\); expected \(5,\) or \(2, 5\)"):
        replacement_values("set", "resid", CELLS, CLEAN, value=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="contains NaN or infinity"):
        replacement_values("set", "resid", CELLS, CLEAN, value=[np.nan] * D)
    with pytest.raises(ValueError, match="unknown kind 'blur'"):
        replacement_values("blur", "resid", CELLS, CLEAN)
