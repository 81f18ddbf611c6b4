"""The Text to Image tab offscreen on the tiny diffusion folder: live steps, filmstrip, stop, seeds, prompt checks,
PNG settings round trip by drag and drop, GIF export, history, failures and the empty state."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import copy_model
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from genstudio.qt.qt_context import StudioContext
from genstudio.qt.qt_jobs import JobManager
from genstudio.runtime.imaging import read_png_settings, save_png
from genstudio.runtime.registry import Registry
from genstudio.runtime.sessions import SessionConfig, SessionPool

pytestmark = pytest.mark.slow
WAIT_MS = 60_000


@pytest.fixture(scope="module")
def root():
    from diffusion_tiny import tiny_diffusion_root

    return tiny_diffusion_root()


@pytest.fixture(scope="module")
def pool():
    return SessionPool(SessionConfig(provider="cpu", threads=1))


@pytest.fixture
def tab(qtbot, tmp_path, root, pool):
    from diffusion_tiny import TINY

    from genstudio.qt.qt_image import QtImageTab

    jobs = JobManager()
    ctx = StudioContext(registry=Registry([(root, "shipped")]), pool=pool, jobs=jobs, output_dir=lambda: tmp_path)
    w = QtImageTab(ctx)
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    w.model_box.setCurrentIndex(w.model_box.findData(TINY))
    assert w.model.name == TINY and w.is_settled()
    yield w
    jobs.shutdown()


def rgb(images) -> np.ndarray:
    from genstudio.qt.qt_image import to_rgb

    return to_rgb(images)


def run(tab, qtbot, **settings):
    """Set the controls, press Generate, wait for the result."""
    if "prompt" in settings:
        tab.prompt.set_text(settings.pop("prompt"))
    if "seed" in settings:
        tab.seed.setValue(settings.pop("seed"))  # typing a seed locks it
    for name, value in settings.items():
        w = getattr(tab, name)
        if name == "scheduler":
            w.setCurrentIndex(w.findData(value))
        elif name == "guidance":
            w.set_decimal(value)
        elif name == "negative":
            w.set_text(value)
        else:
            w.setValue(value)
    with qtbot.waitSignal(tab.generated, timeout=WAIT_MS) as sig:
        tab.generate_button.click()
    return sig.args[0]


def drop(tab, path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    tab.dropEvent(event)


def test_tab_spec_is_registered_after_chat():
    from genstudio.qt.qt_tabs import TAB_SPECS, load_tab_spec

    keys = [load_tab_spec(line).key for line in TAB_SPECS]
    assert keys.index("image") == keys.index("chat") + 1
    assert load_tab_spec(TAB_SPECS[keys.index("image")]).title == "Text to Image"


def test_defaults_examples_and_classes_come_from_the_manifest(tab):
    from diffusion_tiny import CLASSES

    assert (tab.steps.value(), tab.guidance.decimal(), tab.scheduler.currentData(), tab.batch.value()) == \
        (10, 3.0, "ddim", 4)
    assert not tab.lock.isChecked() and tab.lock.text() == "Random"
    assert tab.prompt.text() == CLASSES[0]  # the first example prompt is ready to run
    assert [a.text() for a in tab.examples.menu().actions()] == CLASSES[:3]
    tab.examples.menu().actions()[2].trigger()
    assert tab.prompt.text() == CLASSES[2]
    assert tab.class_box.isVisibleTo(tab) and tab.class_box.count() == len(CLASSES) + 1
    tab.class_box.activated.emit(8)
    assert tab.prompt.text() == CLASSES[7] and tab.class_box.currentIndex() == 0
    assert "8×8 greyscale" in tab.model_info.text() and "8 tokens" in tab.model_info.text()
    titles = [tab.scheduler.itemText(i) for i in range(tab.scheduler.count())]
    assert [tab.scheduler.itemData(i) for i in range(4)] == ["ddpm", "ddim", "euler_a", "dpmpp_2m"]
    assert titles[3].startswith("DPM++ 2M")


def test_every_step_is_shown_and_the_filmstrip_revisits_them(tab, qtbot):
    shown: list[int] = []
    labels: list[str] = []
    tab.step_shown.connect(shown.append)
    tab.step_shown.connect(lambda _i: labels.append(tab.progress_label.text()))
    result = run(tab, qtbot, prompt="a photo of a dress")
    assert shown == list(range(10))  # every step, in order, none dropped
    assert labels[0].startswith("step 1/10 ·") and labels[-1].startswith("step 10/10") and "steps/s" in labels[-1]
    assert result.images.shape == (4, 1, 8, 8) and len(result.steps) == 10
    assert len(tab.view.images) == 4 and np.array_equal(tab.shown, rgb(result.images))  # the final batch
    assert tab.scrub.isEnabled() and tab.scrub.maximum() == 10 and tab.scrub_label.text() == "final image"
    assert len(tab.film.frames) == 10
    shown.clear()
    for k in (0, 4, 9):
        tab.scrub.setValue(k)
        assert np.array_equal(tab.shown, rgb(result.steps[k])), k
        assert tab.scrub_label.text() == f"step {k + 1}/10"
    assert shown == [0, 4, 9]
    tab.film.step_clicked.emit(2)
    assert tab.scrub.value() == 2 and np.array_equal(tab.shown, rgb(result.steps[2]))
    # the noisy sample: another view of the same step, and after the last step it is the image itself
    tab.show_noisy.setChecked(True)
    assert np.array_equal(tab.shown, rgb(tab.current.noisy[2]))
    assert not np.array_equal(tab.shown, rgb(result.steps[2]))
    tab.scrub.setValue(9)
    assert np.abs(tab.shown.astype(int) - rgb(result.images).astype(int)).max() <= 1
    tab.show_x0.setChecked(True)
    assert np.array_equal(tab.shown, rgb(result.steps[9]))
    assert tab.gallery.count() == 1 and tab.is_settled()


def test_stop_midway_keeps_the_last_preview(tab, qtbot):
    tab.steps.setValue(40)
    kept = {}

    def at_step(i: int) -> None:
        if i == 2:
            kept["shown"] = tab.shown.copy()
            tab.stop()

    tab.step_shown.connect(at_step)
    with qtbot.waitSignal(tab.stopped, timeout=WAIT_MS) as sig:
        tab.generate_button.click()
    assert sig.args == [3]
    assert np.array_equal(tab.shown, kept["shown"]) and len(tab.view.images) == 4
    assert tab.run is None and tab.generate_button.isEnabled() and not tab.stop_button.isEnabled()
    assert "stopped at step 3/40" in tab.progress_label.text()
    assert len(tab.film.frames) == 3 and tab.scrub.maximum() == 2  # the steps it made, no final image
    assert not tab.save_button.isEnabled() and tab.gallery.count() == 0
    tab.scrub.setValue(0)
    assert np.array_equal(tab.shown, rgb(tab.current.x0[0]))
    before = tab.current
    with qtbot.waitSignal(tab.stopped, timeout=WAIT_MS) as sig:
        tab.generate()
        tab.stop()  # before any step reached the screen: the preview goes back to what it showed
    assert sig.args == [0] and tab.current is before and np.array_equal(tab.shown, rgb(before.x0[-1]))


def test_locked_seed_repeats_and_an_unlocked_one_is_drawn_anew(tab, qtbot):
    first = run(tab, qtbot, seed=7, steps=3)
    assert tab.lock.isChecked() and tab.lock.text() == "Locked"  # typing a seed locks it
    again = run(tab, qtbot)
    assert first.settings["seed"] == again.settings["seed"] == tab.seed.value() == 7
    assert np.array_equal(first.images, again.images)
    tab.lock.setChecked(False)
    drawn = run(tab, qtbot)
    assert drawn.settings["seed"] == tab.seed.value() != 7 and not tab.lock.isChecked()
    assert not np.array_equal(drawn.images, first.images)
    assert str(drawn.settings["seed"]) in tab.status.text()
    other = run(tab, qtbot)
    assert other.settings["seed"] != drawn.settings["seed"]


def test_unknown_words_warn_and_a_long_prompt_disables_generate(tab, qtbot):
    tab.prompt.set_text("a photo of a zebra")
    assert tab.prompt_warning.isVisibleTo(tab)
    assert "unknown words: zebra" in tab.prompt_warning.text().lower() and "[UNK]" in tab.prompt_warning.text()
    assert tab.prompt.marked_count() == 1 and tab.generate_button.isEnabled()
    assert tab.tokens.text() == "5 / 8 tokens"
    tab.prompt.set_text("a photo of a bag with a red cap and sunglasses")
    assert not tab.generate_button.isEnabled()
    assert "11 tokens" in tab.prompt_warning.text() and "Remove 3 words" in tab.generate_button.toolTip()
    assert tab.generate() is None  # Ctrl+Return refuses too
    tab.prompt.set_text("a bag")
    tab.negative.set_text("a b c d e f g h i")
    assert not tab.generate_button.isEnabled() and "negative prompt has 9 tokens" in tab.prompt_warning.text()
    tab.negative.set_text("")
    assert tab.generate_button.isEnabled() and not tab.prompt_warning.isVisibleTo(tab)
    assert tab.prompt.marked_count() == 0
    # completion works on the word being typed, not on the whole text
    tab.prompt.set_text("")
    qtbot.keyClicks(tab.prompt, "a red sn")
    assert tab.prompt.completer.completionPrefix() == "sn"
    assert tab.prompt.completer.currentCompletion() == "sneaker"
    tab.prompt.insert_completion("sneaker")
    assert tab.prompt.text() == "a red sneaker "


def test_guidance_box_refuses_pasted_nan_and_infinity(tab):
    from PySide6.QtGui import QValidator

    for text in ("nan", "inf", "-Infinity", "1e999"):  # an exception in validate() takes the studio down
        assert tab.guidance.validate(text, 0)[0] == QValidator.State.Invalid, text
        assert tab.guidance.valueFromText(text) == tab.guidance.value()
    assert tab.guidance.validate("7.5", 0)[0] == QValidator.State.Acceptable


def test_ctrl_return_generates_and_the_history_brings_settings_back(tab, qtbot):
    first = run(tab, qtbot, prompt="a photo of a coat", seed=21, steps=3, scheduler="euler_a", guidance=2.5,
                negative="a bag", batch=2)
    tab.prompt.set_text("a photo of a boot")
    tab.seed.setValue(5)
    tab.scheduler.setCurrentIndex(tab.scheduler.findData("ddpm"))
    with qtbot.waitSignal(tab.generated, timeout=WAIT_MS):
        qtbot.keyClick(tab.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert tab.gallery.count() == 2 and tab.gallery.keys() == [2, 1]  # newest first
    restored = []
    tab.settings_restored.connect(restored.append)
    item = tab.gallery.item(1)
    qtbot.mouseClick(tab.gallery.viewport(), Qt.MouseButton.LeftButton,
                     pos=tab.gallery.visualItemRect(item).center())
    assert restored and restored[0]["seed"] == 21
    assert tab.prompt.text() == "a photo of a coat" and tab.negative.text() == "a bag"
    assert (tab.seed.value(), tab.steps.value(), tab.scheduler.currentData(), tab.guidance.decimal(),
            tab.batch.value()) == (21, 3, "euler_a", 2.5, 2)
    assert tab.lock.isChecked() and np.array_equal(tab.shown, rgb(first.images))


def test_saved_png_dropped_on_the_tab_restores_its_settings(tab, qtbot, tmp_path):
    result = run(tab, qtbot, prompt="a photo of a shirt", negative="a coat", seed=11, steps=4, scheduler="euler_a",
                 guidance=2.5, batch=2)
    grid = tab.save_image(tmp_path / "grid.png")
    single = tab.save_image(tmp_path / "one.png", index=1)
    assert read_png_settings(grid) == result.settings
    assert read_png_settings(single) == {**result.settings, "seed": 12, "batch": 1}
    assert Image.open(single).size == (8, 8)
    tab.apply_defaults()
    tab.prompt.set_text("a bag")
    tab.negative.set_text("")
    restored = []
    tab.settings_restored.connect(restored.append)
    drop(tab, grid)
    assert restored[-1] == result.settings
    assert (tab.prompt.text(), tab.negative.text(), tab.seed.value(), tab.steps.value(), tab.scheduler.currentData(),
            tab.guidance.decimal(), tab.batch.value()) == ("a photo of a shirt", "a coat", 11, 4, "euler_a", 2.5, 2)
    assert tab.lock.isChecked() and "grid.png" in tab.status.text()
    drop(tab, single)
    assert (tab.seed.value(), tab.batch.value()) == (12, 1)
    again = run(tab, qtbot)  # the single image's settings make that image again
    assert np.array_equal(rgb(again.images)[0], np.asarray(Image.open(single).convert("RGB")))
    # File > Save Output writes the batch into the output folder without overwriting
    a, b = tab.save_output(tmp_path / "out"), tab.save_output(tmp_path / "out")
    assert a != b and a.exists() and b.exists()


def test_a_png_dropped_on_the_prompt_box_restores_its_settings_and_leaves_the_text(tab, tmp_path):
    from PySide6.QtCore import QPoint
    from PySide6.QtGui import QDragEnterEvent
    from PySide6.QtWidgets import QApplication

    png = save_png(np.zeros((8, 8, 3), np.uint8), tmp_path / "made.png",
                   {"family": "diffusion", "model": "diffusion-tiny", "prompt": "a photo of a boot", "seed": 9})
    tab.prompt.set_text("a bag")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(png))])
    target = tab.prompt.viewport()
    enter = QDragEnterEvent(QPoint(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, enter)  # the prompt box passes it on, so the tab takes the drop
    assert enter.isAccepted()
    QApplication.sendEvent(target, QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                              Qt.KeyboardModifier.NoModifier))
    assert tab.prompt.text() == "a photo of a boot" and tab.seed.value() == 9 and "made.png" in tab.status.text()


def test_dropping_other_files_changes_nothing(tab, tmp_path):
    plain = tmp_path / "plain.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(plain)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    gan = save_png(np.zeros((8, 8, 3), np.uint8), tmp_path / "gan.png", {"family": "gan", "seed": 3})
    before = tab.request()
    restored = []
    tab.settings_restored.connect(restored.append)
    drop(tab, plain)
    assert "no generation settings" in tab.status.text() and "nothing changed" in tab.status.text()
    drop(tab, text)
    assert "not an image" in tab.status.text()
    drop(tab, gan)
    assert "gan model" in tab.status.text() and "nothing changed" in tab.status.text()
    assert tab.request() == before and restored == [] and tab.status.property("role") == "error"


def test_save_png_into_a_folder_that_cannot_be_written_says_so(tab, qtbot, tmp_path, monkeypatch):
    from genstudio.qt import qt_image

    run(tab, qtbot, steps=2)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    target = blocker / "image.png"
    monkeypatch.setattr(qt_image.QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), "PNG (*.png)"))
    tab.save_button.click()
    assert "could not write" in tab.status.text() and tab.status.property("role") == "error"
    assert tab.save_button.isEnabled() and not target.exists()


@pytest.mark.filterwarnings("ignore:libshiboken")  # its note on the overflow it raises
def test_a_png_with_out_of_range_settings_restores_the_rest_and_says_so(tab, tmp_path):
    restored = []
    tab.settings_restored.connect(restored.append)
    for k, bad in enumerate(({"steps": 10**12}, {"batch": 10**12}, {"guidance": float("inf")})):
        png = save_png(np.zeros((8, 8, 3), np.uint8), tmp_path / "odd.png",
                       {"family": "diffusion", "model": "diffusion-tiny", "prompt": "a photo of a bag", **bad})
        tab.prompt.set_text("a coat")
        drop(tab, png)
        assert len(restored) == k + 1 and tab.prompt.text() == "a photo of a bag", bad
        assert "could not be read" in tab.status.text() and tab.status.property("role") == "error"


def test_gif_export_has_one_frame_per_step(tab, qtbot, tmp_path):
    assert not tab.gif_button.isEnabled()
    run(tab, qtbot, prompt="a photo of a sandal", steps=6, scheduler="ddpm", seed=3)
    with qtbot.waitSignal(tab.gif_saved, timeout=WAIT_MS) as sig:
        tab.save_gif(tmp_path / "steps.gif")
    gif = Image.open(sig.args[0])
    assert gif.n_frames == 6 and min(gif.size) >= 256


def test_a_failing_run_shows_in_the_status_and_the_tab_goes_on(tab, qtbot, monkeypatch):
    def broken(request):
        def job():
            raise RuntimeError("the UNet fell over")
            yield

        return job()

    real = tab.model.sample
    monkeypatch.setattr(tab.model, "sample", broken)
    tab.generate_button.click()
    qtbot.waitUntil(lambda: "failed" in tab.status.text(), timeout=WAIT_MS)
    assert "the UNet fell over" in tab.status.text() and tab.status.property("role") == "error"
    assert tab.run is None and tab.generate_button.isEnabled()
    monkeypatch.setattr(tab.model, "sample", real)
    run(tab, qtbot, steps=2)
    assert tab.status.property("role") == "muted"


def test_a_broken_model_folder_is_refused_and_the_others_still_open(qtbot, tmp_path, root, pool):

    from diffusion_tiny import TINY

    from genstudio.qt.qt_image import QtImageTab

    models = tmp_path / "models"
    for name, broken, text in (("diffusion-a-tokenizer", "tokenizer/tokenizer.json", "{not json"),
                               ("diffusion-b-scheduler", "scheduler/scheduler_config.json", '{"beta_start": "x"}'),
                               (TINY, None, "")):
        copy_model(root / TINY, models / name)
        if broken:
            (models / name / broken).write_text(text)
    jobs = JobManager()
    ctx = StudioContext(registry=Registry([(models, "shipped")]), pool=pool, jobs=jobs, output_dir=lambda: tmp_path)
    w = QtImageTab(ctx)  # the first model in the box is the broken one: the tab still opens
    qtbot.addWidget(w)
    assert w.model is None and "diffusion-a-tokenizer cannot be opened" in w.status.text()
    assert "tokenizer" in w.view.message and not w.generate_button.isEnabled()
    w.model_box.setCurrentIndex(w.model_box.findData("diffusion-b-scheduler"))
    assert w.model is None and "scheduler config" in w.status.text()
    w.model_box.setCurrentIndex(w.model_box.findData(TINY))
    assert w.model.name == TINY and w.generate_button.isEnabled() and w.status.property("role") == "muted"
    jobs.shutdown()


def test_no_model_shows_how_to_build_one(qtbot, tmp_path):
    from genstudio.qt.qt_image import QtImageTab

    jobs = JobManager()
    ctx = StudioContext(registry=Registry([(tmp_path, "shipped")]), pool=SessionPool(SessionConfig(provider="cpu")),
                        jobs=jobs, output_dir=lambda: tmp_path)
    w = QtImageTab(ctx)
    qtbot.addWidget(w)
    assert "genstudio export diffusion --dataset synthfaces" in w.view.message and w.is_settled()
    assert not w.generate_button.isEnabled() and w.generate() is None
    jobs.shutdown()


def test_generate_pressed_right_after_stop_starts_the_next_run(tab, qtbot):
    import re

    tab.steps.setValue(40)
    tab.lock.setChecked(False)
    pressed = {}

    def at_step(i: int) -> None:
        if i == 2 and not pressed:
            tab.stop()
            pressed["enabled"] = tab.generate_button.isEnabled()
            tab.generate_button.click()  # at once, before the stopped run has ended

    labels: list[str] = []
    tab.step_shown.connect(at_step)
    tab.stopped.connect(lambda _n: labels.append(tab.progress_label.text()))
    with qtbot.waitSignal(tab.stopped, timeout=WAIT_MS) as sig:
        tab.generate_button.click()
    assert sig.args == [3] and pressed["enabled"]
    assert re.fullmatch(r"stopped at step 3/40 · [\d.]+ s · [\d.]+ steps/s", labels[0])  # elapsed, pace kept
    assert tab.run is not None and tab.run.key == 2  # the second press was kept, not dropped
    with qtbot.waitSignal(tab.generated, timeout=WAIT_MS) as done:
        pass
    assert done.args[0].settings["steps"] == 40 and tab.gallery.keys() == [2] and tab.run is None


def test_a_history_click_during_a_run_leaves_the_gallery_on_what_is_shown(tab, qtbot):
    first = run(tab, qtbot, steps=2, seed=4)
    assert [int(i.data(Qt.ItemDataRole.UserRole)) for i in tab.gallery.selectedItems()] == [1]
    tab.steps.setValue(40)

    def at_step(i: int) -> None:
        if i == 2:
            item = tab.gallery.item(0)
            qtbot.mouseClick(tab.gallery.viewport(), Qt.MouseButton.LeftButton,
                             pos=tab.gallery.visualItemRect(item).center())
            tab.stop()

    tab.step_shown.connect(at_step)
    with qtbot.waitSignal(tab.stopped, timeout=WAIT_MS):
        tab.generate_button.click()
    assert tab.current.key == 2 and tab.current.images is None  # the stopped run is on screen ...
    assert tab.gallery.selectedItems() == []  # ... so no history item is marked as shown
    tab.step_shown.disconnect(at_step)
    tab.show_generation(1)
    with qtbot.waitSignal(tab.stopped, timeout=WAIT_MS) as sig:
        tab.generate()
        tab.stop()  # before its first step: generation 1 is back on screen, and marked in the history
    assert sig.args == [0] and tab.current.key == 1 and np.array_equal(tab.shown, rgb(first.images))
    assert [int(i.data(Qt.ItemDataRole.UserRole)) for i in tab.gallery.selectedItems()] == [1]


def test_a_run_that_fails_midway_keeps_its_steps_on_the_filmstrip(tab, qtbot, monkeypatch, tmp_path):
    real = tab.model.sample

    def failing(request):
        job = real(request)

        def gen():
            for k, p in enumerate(job):
                if k == 3:
                    raise RuntimeError("the UNet fell over")
                yield p

        return gen()

    monkeypatch.setattr(tab.model, "sample", failing)
    tab.steps.setValue(10)
    tab.generate_button.click()
    qtbot.waitUntil(lambda: "failed" in tab.status.text(), timeout=WAIT_MS)
    gen = tab.current
    assert tab.run is None and gen.images is None and gen.shown > 0
    assert len(gen.x0) == len(gen.noisy) == gen.shown == len(tab.film.frames)  # what was shown, on the strip
    assert tab.scrub.isEnabled() and tab.scrub.maximum() == gen.shown - 1
    assert tab.progress_label.text() == f"failed at step {gen.shown}/10"
    tab.scrub.setValue(0)
    assert np.array_equal(tab.shown, rgb(gen.x0[0]))
    with qtbot.waitSignal(tab.gif_saved, timeout=WAIT_MS) as sig:
        tab.save_gif(tmp_path / "failed.gif")
    assert Image.open(sig.args[0]).n_frames == gen.shown


def test_stop_pressed_as_a_run_ends_keeps_its_result_and_the_full_progress(tab, qtbot):
    tab.steps.setValue(1)
    job = tab.generate()
    assert job.join(WAIT_MS / 1000)  # the worker has ended; its result waits for the event loop
    with qtbot.waitSignal(tab.generated, timeout=WAIT_MS) as sig:
        tab.stop()  # too late to stop anything
    assert sig.args[0].images.shape[0] == 4 and tab.gallery.count() == 1
    assert tab.progress.value() == tab.progress.maximum() == 1
    assert tab.progress_label.text().startswith("1 step in ")


def test_models_changed_during_a_run_wait_for_it_to_end(qtbot, tmp_path, root, pool):
    """A refill of the picker mid-run (an import, with the running model gone from disk) would open another model
    under the running one and reset its settings; it waits for the run to end instead."""
    import shutil

    from diffusion_tiny import TINY

    from genstudio.qt.qt_image import QtImageTab

    models = tmp_path / "models"
    for name in ("diffusion-other", TINY):
        copy_model(root / TINY, models / name)
    jobs = JobManager()
    registry = Registry([(models, "shipped")])
    ctx = StudioContext(registry=registry, pool=pool, jobs=jobs, output_dir=lambda: tmp_path)
    w = QtImageTab(ctx)
    qtbot.addWidget(w)
    w.model_box.setCurrentIndex(w.model_box.findData(TINY))
    w.steps.setValue(12)

    def at_step(i: int) -> None:
        if i == 2:
            shutil.rmtree(models / TINY)
            registry.refresh()
            w.models_changed()
            assert w.model.name == TINY and w.steps.value() == 12 and w.stop_button.isEnabled()

    w.step_shown.connect(at_step)
    with qtbot.waitSignal(w.generated, timeout=WAIT_MS) as done:
        w.generate_button.click()
    assert done.args[0].settings["steps"] == 12 and done.args[0].settings["model"] == TINY
    assert w.model.name == "diffusion-other" and w.model_box.findData(TINY) == -1  # refilled once the run ended
    jobs.shutdown()
