"""Prices given by flag that are no finite number (``nan``, ``inf``): refused as bad input,
never a page or a table of ``$nan``."""

from __future__ import annotations

import pytest

from engine.cli.main import main
from engine.pricing import PricingError, price_for

NOT_PRICES = ["nan", "NaN", "inf", "-inf", "1e400"]


@pytest.mark.parametrize("value", NOT_PRICES)
@pytest.mark.parametrize("flag", ["--vcpu-price", "--gb-price"])
def test_a_price_flag_that_is_no_number_is_bad_input(
    capsys: pytest.CaptureFixture[str], flag: str, value: str
) -> None:
    other = "--gb-price" if flag == "--vcpu-price" else "--vcpu-price"
    args = ["simulate", "--from", "2026-11-02", "--to", "2026-11-03", "-f", "sample_schedules"]
    code = main([*args, flag, value, other, "0.01"])
    out, err = capsys.readouterr()
    assert code == 2
    assert flag in err and "nan" not in out.lower()


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_price_that_is_no_number_is_refused(value: float) -> None:
    with pytest.raises(PricingError):
        price_for("ap-northeast-1", vcpu_price=value, gb_price=0.01)
    with pytest.raises(PricingError):
        price_for("ap-northeast-1", vcpu_price=0.05, gb_price=value)
