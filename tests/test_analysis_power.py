"""analysis.power on constructed data whose answers are known in closed form or by direct simulation."""
import numpy as np
import pytest

from analysis import power
from analysis.stats import mann_whitney
from analysis.testing import synthetic_trials

SIGMA = 2.0
PILOT = np.random.default_rng(0).normal(15.0, SIGMA, 20000)       # a pilot that is the population


@pytest.mark.parametrize("statistic,factor", [("mean", 1.0), ("median", np.sqrt(np.pi / 2))])
def test_ci_half_width_matches_the_normal_closed_form(statistic, factor):
    """95 % half-width of the mean: 1.96 sigma / sqrt(n); of the median: sqrt(pi / 2) times that."""
    for n in (20, 80):
        want = 1.959964 * factor * SIGMA / np.sqrt(n)
        got = power.ci_half_width(PILOT, n, statistic, n_resamples=4000, seed=1)
        assert got == pytest.approx(want, rel=0.07), (statistic, n)


def test_trials_needed_finds_the_first_count_under_the_target():
    import pandas as pd
    df = pd.DataFrame({"problem": "blur", "op_set": "good", "method": "DAS", "arch_psnr": PILOT})
    grid = (10, 20, 40, 80, 160)
    # mean: half-widths 1.24, 0.88, 0.62, 0.44, 0.31 dB; median: x1.25 (0.78 at 40, 0.55 at 80, 0.39 at 160)
    mean = power.trials_needed(df, 0.5, "mean", grid=grid, n_resamples=3000).iloc[0]
    median = power.trials_needed(df, 0.5, "median", grid=grid, n_resamples=3000).iloc[0]
    assert mean["needed"] == 80 and median["needed"] == 160
    assert mean["reached"] and not mean["small_pilot"] and mean["n_pilot"] == PILOT.size
    impossible = power.trials_needed(df, 0.01, "median", grid=grid, n_resamples=500).iloc[0]
    assert np.isnan(impossible["needed"]) and not impossible["reached"]
    with pytest.raises(ValueError, match="target"):
        power.trials_needed(df, 0.0)


def test_power_curve_of_a_shift_matches_direct_simulation():
    """N(0.5 sigma, sigma) against N(0, sigma): the bootstrap from large pilots equals the power
    simulated from the normal distributions themselves, within Monte-Carlo error."""
    rng = np.random.default_rng(2)
    b = rng.normal(0.0, 1.0, 20000)
    a = rng.normal(0.5, 1.0, 20000)
    n, reps = 30, 1500
    curve = power.power_curve(a, b, grid=[n], n_resamples=reps, seed=3).iloc[0]
    hits = 0
    for _ in range(reps):
        x, y = rng.normal(0.5, 1.0, n), rng.normal(0.0, 1.0, n)
        hits += np.median(x) > np.median(y) and mann_whitney(x, y)["p_value"] < 0.05
    direct = hits / reps
    se = np.sqrt(2 * direct * (1 - direct) / reps)
    assert abs(curve["power"] - direct) <= 4 * se, (curve["power"], direct)
    assert 0.3 < direct < 0.7                           # a shift where the test is informative at n = 30
    # more trials, more power; no effect, power ~ alpha / 2 (the direction halves the two-sided rate)
    more = power.power_curve(a, b, grid=[10, 80], n_resamples=400, seed=4)["power"].to_numpy()
    assert more[0] < more[1]
    null = power.power_curve(b, b, grid=[30], n_resamples=1000, seed=5).iloc[0]["power"]
    assert null < 0.06


def test_small_pilot_is_flagged_with_a_warning():
    import pandas as pd
    df = pd.DataFrame({"problem": "blur", "op_set": "good", "method": "DAS", "arch_psnr": PILOT[:6]})
    with pytest.warns(power.SmallPilotWarning, match="6 finite trials"):
        row = power.trials_needed(df, 1.0, n_resamples=200).iloc[0]
    assert row["small_pilot"]


def test_findings_power_on_a_constructed_study():
    """DAS 6 dB above random sampling on all ops: 'DAS > random sampling' holds at 10 trials per row
    in nearly every resampled study; a finding whose rows are missing has power 0."""
    df, _ = synthetic_trials(n_trials=12, problems=("blur",), op_sets=("all",), methods=("DAS", "Random Sampling"))
    df.loc[df.method == "DAS", "arch_psnr"] += 6.0
    out = power.findings_power(df, grid=(10, 20), n_resamples=30, test_resamples=19)
    row = out.set_index("finding").loc["DAS > random sampling on all ops"]
    assert row["verdict_now"] == "holds" and row["power_at_10"] >= 0.9 and row["needed"] == 10
    missing = out.set_index("finding").loc["DAS > random search on all ops"]
    assert missing["power_at_20"] == 0 and np.isnan(missing["needed"])
    assert not out["small_pilot"].any()
