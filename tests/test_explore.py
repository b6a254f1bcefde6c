"""`selfsup explore`: its kNN is the evaluation's, and the page works in a real browser (hover, pin, filter,
linked selection, confusion cells), with no console errors."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from browser import ARTIFACTS, available, chromium
from conftest import invoke


@contextlib.contextmanager
def measured_cache(trained: Path):  # type: ignore[no-untyped-def]
    """One cache for eval.precision=auto's measurement: code paths compared in it extract in the same mode."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(trained.parent / "cache"))
        yield


@pytest.fixture(scope="module")
def explored(trained: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The session's trained SimCLR run beside its random-init encoder, every test image shown."""
    from selfsup.experiments.explore import explore

    with measured_cache(trained):
        return explore([trained], against="random-init", n=100_000, k=5, progress=False)


def test_the_neighbours_and_predictions_are_the_evaluations_knn(trained: Path, explored) -> None:  # type: ignore[no-untyped-def]
    """Over the whole split, explore's kNN accuracy is eval.json's for the run, and the baseline's for the
    random-init encoder: both reached by other code paths (evaluate_method, baseline)."""
    from selfsup.config import RunConfig
    from selfsup.experiments.baselines import baseline

    evaluation = json.loads((trained / "eval.json").read_text())
    run, random_init = explored.representations
    assert run.scored == evaluation["split"]["scored_images"] == len(explored.labels)
    assert run.accuracy == pytest.approx(evaluation["knn"]["accuracy"], abs=1e-9)
    config = RunConfig.from_yaml(trained / "config.yaml")
    with measured_cache(trained):  # the cache explore measured in, or the two may extract in different modes
        reference = baseline(backbone=config.backbone, data=config.data, eval_config=config.eval)["random-init"]
    assert random_init.accuracy == pytest.approx(reference.knn["accuracy"], abs=1e-9)
    assert run.accuracy != random_init.accuracy
    # each shown image's first neighbour is its most similar bank image; the bank images are those listed
    assert (np.diff(run.similarity, axis=1) <= 1e-6).all()
    assert set(np.unique(np.concatenate([r.neighbours.ravel() for r in explored.representations]))) == set(
        explored.bank_images)
    assert run.neighbours.shape == (len(explored.labels), 5)


def test_explore_refuses_bad_requests_with_exit_2(trained: Path, tmp_path: Path) -> None:
    result = invoke("explore", str(trained), str(trained), "--against", "random-init", "--out", str(tmp_path / "x.html"))
    assert result.exit_code == 2 and "explore one run, two runs" in result.output
    result = invoke("explore", str(tmp_path), "--out", str(tmp_path / "x.html"))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert not (tmp_path / "x.html").exists()


@pytest.mark.skipif(not available() and not os.environ.get("SELFSUP_REQUIRE_BROWSER"),
                    reason="chromium, chromium-driver or selenium missing (scripts/install.sh installs them)")
def test_the_page_in_headless_chromium(explored, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    from selfsup.experiments.explore_page import write_page

    page_path = write_page(explored, tmp_path / "explore.html", "selfsup explore: test")
    point = """
        const v = [...Bokeh.index.all_views()].find((x) => x.model && x.model.name === arguments[0]);
        const box = v.parent.canvas_view.el.getBoundingClientRect();
        return [box.left + v.glyph.sx[arguments[1]], box.top + v.glyph.sy[arguments[1]], v.model.view.indices.count];
    """
    selected = "return Bokeh.documents[0].get_model_by_name('points').selected.indices"
    with chromium() as page:
        idle_ms = page.open_bokeh(page_path)
        assert idle_ms < 30_000

        def pointer(x: float, y: float, click: bool = False) -> None:
            action = ActionBuilder(page.driver)
            action.pointer_action.move_to_location(int(x), int(y))
            if click:
                action.pointer_action.click()
            action.perform()
            time.sleep(0.4)

        # hover: the image, enlarged, from its sprite sheet
        x, y, shown = page.script(point, "points0", 7)
        assert shown == len(explored.labels)
        pointer(x, y)
        enlarged = page.script("return deep('.enlarged').filter((e) => e.offsetParent !== null)"
                               ".map((e) => [e.offsetWidth, getComputedStyle(e).backgroundImage.slice(0, 30)])")
        assert enlarged and enlarged[0][0] == 112 and enlarged[0][1].startswith('url("data:image/webp')
        page.screenshot(ARTIFACTS / "explore-hover.png")
        # a click pins one image: its 5 neighbours under each representation, drawn from the sheets
        pointer(x, y, click=True)
        pinned = page.script(selected)
        assert len(pinned) == 1
        rows = page.script("return deep('.neighbours').map((r) => [r.dataset.representation, "
                           "r.querySelectorAll('.neighbour').length])")
        assert rows == [["run", 5], ["random init", 5]]
        marked = page.script("return deep('.neighbour').map((e) => [e.classList.contains('same'), "
                             "getComputedStyle(e).backgroundImage !== 'none'])")
        p = pinned[0]
        expected = [explored.bank_labels[b] == explored.labels[p] for r in explored.representations
                    for b in r.neighbours[p]]
        assert [same for same, _ in marked] == expected and all(drawn for _, drawn in marked)
        page.screenshot(ARTIFACTS / "explore-pinned.png")
        # linked selection: a click in the second map pins the same image in both
        other = next(i for i in range(len(explored.labels)) if i != p)
        x1, y1, _ = page.script(point, "points1", other)
        pointer(x1, y1, click=True)
        now = page.script(selected)
        assert len(now) == 1 and now[0] != p
        assert page.script("return deep('.pinned').map((e) => e.textContent)")[0].find(
            f"image {explored.index[now[0]]} of the split") >= 0
        # the class filter hides that class's points on both maps
        page.script("deep('input[type=checkbox]')[0].click()")
        time.sleep(0.4)
        first_class = sorted(set(explored.labels.tolist()))[0]
        hidden = int((explored.labels == first_class).sum())
        assert page.script(point, "points0", 0)[2] == len(explored.labels) - hidden
        assert page.script(point, "points1", 0)[2] == len(explored.labels) - hidden
        # a confusion cell lists its images
        cell = page.script("""
            const source = Bokeh.documents[0].get_model_by_name('confusion0');
            const i = source.data.count.findIndex((c) => c > 1);
            source.selected.indices = [i];
            return JSON.parse(source.data.members[i]);
        """)
        time.sleep(0.3)
        assert sorted(page.script(selected)) == sorted(cell)
        assert len(page.script("return deep('.listed')")) == min(len(cell), 200)
        page.screenshot(ARTIFACTS / "explore-confusion-cell.png")
        assert page.errors() == []


def test_report_builds_and_links_each_runs_explore_page(trained: Path, tmp_path: Path) -> None:
    import shutil

    from selfsup.experiments.report import build_report

    shutil.copytree(trained, tmp_path / "runs" / "simclr")
    outputs = build_report(tmp_path / "runs", embedding=None, baselines=False, explore=True)
    page = tmp_path / "runs" / "simclr" / "explore.html"
    assert page.stat().st_size > 100_000
    assert "<a href='simclr/explore.html'>explore</a>" in outputs["html"].read_text()
    assert "[explore](simclr/explore.html)" in outputs["md"].read_text()
    built = page.stat().st_mtime_ns
    build_report(tmp_path / "runs", embedding=None, baselines=False, explore=True)  # newer than the checkpoint: kept
    assert page.stat().st_mtime_ns == built


def test_a_reconstruction_run_shows_its_reconstructions(tmp_path: Path) -> None:
    """An autoencoder's page carries each shown image's reconstruction (decoded from its code) for the hover."""
    from conftest import QUICK

    from selfsup.experiments.explore import explore
    from selfsup.experiments.explore_page import write_page

    result = invoke("train", "ae", *QUICK, "--no-eval", "--out", str(tmp_path / "ae"))
    assert result.exit_code == 0, result.output
    exploration = explore([tmp_path / "ae"], n=50, k=3, progress=False)
    (recon,) = exploration.reconstructions
    assert recon is not None and recon.shape == exploration.images.shape and recon.dtype == np.uint8
    assert not np.array_equal(recon, exploration.images)  # decoded, not copied
    page = write_page(exploration, tmp_path / "ae.html").read_text()
    assert "recon_sheet0" in page and "reconstruction" in page
