"""The billboard's keys: real pygame events posted to pygame's own queue (SDL dummy
video driver), read back through `read_controls`, the only door."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pygame
import pytest

from billboard.controls import (
    HELP_LINES,
    KEY_CYCLE,
    QUIT_PROMPT,
    QUIT_WINDOW_S,
    Control,
    Keyboard,
    Resized,
    Ui,
    next_key,
    read_controls,
)
from billboard.engine import Command
from billboard.engine.harmony import parse_key
from billboard.projection.calibration import (
    Move,
    Nudge,
    Press,
    Redo,
    Release,
    Select,
    ToggleSnap,
    Undo,
)
from relay.contract.events import COMMANDS, read_command


@pytest.fixture(autouse=True)
def queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """pygame's event queue on SDL's dummy video driver, empty to start with."""
    pygame.display.quit()  # the next init reads the driver set here
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    pygame.display.init()
    pygame.display.set_mode((320, 180))
    pygame.event.clear()
    yield
    pygame.quit()


def press(key: int, text: str = "", mod: int = pygame.KMOD_NONE) -> None:
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, unicode=text, mod=mod))


def read(keyboard: Keyboard | None = None, now: float = 100.0, **state: Any) -> list[Control]:
    values: dict[str, Any] = {"bpm": 112.0, "key": "C", "paused": False}
    values.update(state)
    return read_controls(keyboard or Keyboard(), now=now, **values)


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        (pygame.K_f, "f", Ui("fullscreen")),
        (pygame.K_h, "h", Ui("hud")),
        (pygame.K_t, "t", Ui("test_pattern")),
        (pygame.K_m, "m", Ui("mute_sound")),
        (pygame.K_SLASH, "?", Ui("help")),
        (pygame.K_SLASH, "/", Ui("help")),
        (pygame.K_QUESTION, "?", Ui("help")),
        (pygame.K_p, "p", Command("panic", {})),
        (pygame.K_k, "k", Command("key", {"key": "G"})),
        (pygame.K_r, "r", Command("midi_sync", {})),
        (pygame.K_SPACE, " ", Command("pause", {"on": True})),
    ],
)
def test_each_key_gives_its_control(key: int, text: str, expected: Control) -> None:
    press(key, text)
    assert read() == [expected]


@pytest.mark.parametrize(
    ("key", "text", "bpm"),
    [
        (pygame.K_PLUS, "+", 116.0),
        (pygame.K_EQUALS, "=", 116.0),
        (pygame.K_EQUALS, "+", 116.0),  # shift + "=" on a US keyboard
        (pygame.K_KP_PLUS, "+", 116.0),
        (pygame.K_MINUS, "-", 108.0),
        (pygame.K_KP_MINUS, "-", 108.0),
    ],
)
def test_plus_and_minus_move_the_tempo_four_bpm_from_the_current_one(
    key: int, text: str, bpm: float
) -> None:
    press(key, text)
    assert read(bpm=112.0) == [Command("tempo", {"bpm": bpm})]


def test_presses_read_together_build_on_each_other() -> None:
    for _ in range(3):
        press(pygame.K_PLUS, "+")
    press(pygame.K_k, "k")
    press(pygame.K_k, "k")
    press(pygame.K_SPACE, " ")
    press(pygame.K_SPACE, " ")
    assert read(bpm=100.0, key="C", paused=False) == [
        Command("tempo", {"bpm": 104.0}),
        Command("tempo", {"bpm": 108.0}),
        Command("tempo", {"bpm": 112.0}),
        Command("key", {"key": "G"}),
        Command("key", {"key": "D"}),
        Command("pause", {"on": True}),
        Command("pause", {"on": False}),
    ]


def test_the_tempo_stays_within_the_grids_range() -> None:
    press(pygame.K_PLUS, "+")
    assert read(bpm=238.0) == [Command("tempo", {"bpm": 240.0})]
    press(pygame.K_MINUS, "-")
    assert read(bpm=41.0) == [Command("tempo", {"bpm": 40.0})]


def test_k_walks_the_whole_circle_of_fifths_and_back_to_c() -> None:
    key, seen = "C", []
    for _ in range(12):
        key = next_key(key)
        seen.append(key)
    assert seen == [*KEY_CYCLE[1:], "C"]
    assert next_key("C#") == "Ab"  # the engine names keys with sharps; the circle reads on
    assert next_key("not a key") == "C"
    assert all(parse_key(name) >= 0 for name in KEY_CYCLE)  # the engine accepts each


def test_esc_once_arms_and_a_second_esc_within_two_seconds_quits() -> None:
    keyboard = Keyboard()
    press(pygame.K_ESCAPE)
    assert read(keyboard, now=10.0) == [Ui("quit_armed")]
    assert keyboard.quit_prompt(10.5) == QUIT_PROMPT
    press(pygame.K_ESCAPE)
    assert read(keyboard, now=11.5) == [Ui("quit")]


def test_esc_then_esc_three_seconds_later_only_arms_again() -> None:
    keyboard = Keyboard()
    press(pygame.K_ESCAPE)
    assert read(keyboard, now=10.0) == [Ui("quit_armed")]
    assert keyboard.quit_prompt(10.0 + QUIT_WINDOW_S + 0.1) is None  # the prompt goes
    press(pygame.K_ESCAPE)
    assert read(keyboard, now=13.0) == [Ui("quit_armed")]
    press(pygame.K_ESCAPE)
    assert read(keyboard, now=14.0) == [Ui("quit")]


def test_closing_the_window_quits_at_once() -> None:
    pygame.event.post(pygame.event.Event(pygame.QUIT))
    assert read() == [Ui("quit")]


def test_a_resized_window_is_reported_with_its_new_size() -> None:
    pygame.event.post(pygame.event.Event(pygame.VIDEORESIZE, w=1024, h=576, size=(1024, 576)))
    assert read() == [Resized((1024, 576))]


def test_keys_held_with_ctrl_or_alt_are_left_to_the_window_manager() -> None:
    press(pygame.K_f, "f", pygame.KMOD_LCTRL)
    press(pygame.K_ESCAPE, "", pygame.KMOD_LALT)
    press(pygame.K_p, "p", pygame.KMOD_LSHIFT)  # shift is how symbols are typed: kept
    assert read() == [Command("panic", {})]


def test_nothing_but_the_billboards_own_values_comes_out_and_the_queue_is_drained() -> None:
    pygame.event.post(
        pygame.event.Event(pygame.MOUSEMOTION, pos=(3, 4), rel=(1, 1), buttons=(0, 0, 0))
    )
    press(pygame.K_q, "q")  # not a key of ours
    pygame.event.post(pygame.event.Event(pygame.KEYUP, key=pygame.K_f, unicode="f", mod=0))
    press(pygame.K_h, "h")
    controls = read()
    assert controls == [Ui("hud")]
    assert all(isinstance(c, Ui | Resized | Command) for c in controls)
    assert pygame.event.peek() is False


def test_the_commands_are_the_ones_the_operator_console_sends() -> None:
    for key, text in [(pygame.K_PLUS, "+"), (pygame.K_k, "k"), (pygame.K_p, "p")]:
        press(key, text)
    press(pygame.K_SPACE, " ")
    for control in read():
        assert isinstance(control, Command)
        assert control.name in COMMANDS
        sent = {"event": "command", "name": control.name, "args": dict(control.args)}
        assert read_command(sent) == control  # as if it had come from the console


def test_the_help_names_every_key() -> None:
    keys = [line.split("\t", 1)[0] for line in HELP_LINES]
    assert keys == ["F", "H", "T", "C", "P", "M", "R", "+  −", "K", "Space", "?  /", "Esc Esc"]
    assert all("\t" in line for line in HELP_LINES)


# -- the calibration mode --------------------------------------------------------------


def mouse(kind: int, pos: tuple[int, int], button: int = pygame.BUTTON_LEFT) -> None:
    fields: dict[str, Any] = {"pos": pos}
    if kind == pygame.MOUSEMOTION:
        fields.update(rel=(1, 1), buttons=(1, 0, 0))
    else:
        fields["button"] = button
    pygame.event.post(pygame.event.Event(kind, **fields))


def test_c_toggles_the_calibration_mode_whether_or_not_it_is_on() -> None:
    press(pygame.K_c, "c")
    assert read() == [Ui("calibrate")]
    press(pygame.K_c, "c")
    assert read(calibrating=True) == [Ui("calibrate")]


def test_while_calibrating_the_mouse_drags_and_its_moves_come_out_as_the_last() -> None:
    mouse(pygame.MOUSEBUTTONDOWN, (100, 50))
    for x in range(101, 120):
        mouse(pygame.MOUSEMOTION, (x, 60))
    mouse(pygame.MOUSEBUTTONUP, (119, 60))
    mouse(pygame.MOUSEBUTTONDOWN, (5, 5), button=pygame.BUTTON_RIGHT)  # not ours
    assert read(calibrating=True) == [
        Press((100.0, 50.0)),
        Move((119.0, 60.0)),
        Release((119.0, 60.0)),
    ]


def test_the_mouse_does_nothing_when_not_calibrating() -> None:
    mouse(pygame.MOUSEBUTTONDOWN, (100, 50))
    mouse(pygame.MOUSEMOTION, (110, 50))
    assert read() == []


@pytest.mark.parametrize(
    ("key", "mod", "expected"),
    [
        (pygame.K_LEFT, pygame.KMOD_NONE, Nudge(-1.0, 0.0)),
        (pygame.K_DOWN, pygame.KMOD_NONE, Nudge(0.0, 1.0)),
        (pygame.K_UP, pygame.KMOD_LSHIFT, Nudge(0.0, -10.0)),
        (pygame.K_RIGHT, pygame.KMOD_RSHIFT, Nudge(10.0, 0.0)),
        (pygame.K_TAB, pygame.KMOD_NONE, Select(1)),
        (pygame.K_TAB, pygame.KMOD_LSHIFT, Select(-1)),
        (pygame.K_s, pygame.KMOD_NONE, ToggleSnap()),
        (pygame.K_u, pygame.KMOD_NONE, Ui("underlay")),
        (pygame.K_z, pygame.KMOD_LCTRL, Undo()),
        (pygame.K_z, pygame.KMOD_LCTRL | pygame.KMOD_LSHIFT, Redo()),
        (pygame.K_y, pygame.KMOD_RCTRL, Redo()),
        (pygame.K_s, pygame.KMOD_LCTRL, Ui("save_mapping")),
    ],
)
def test_the_calibration_keys(key: int, mod: int, expected: Control) -> None:
    press(key, "", mod)
    assert read(calibrating=True) == [expected]


def test_the_calibration_keys_are_free_outside_it_and_the_show_keys_work_inside() -> None:
    for key in (pygame.K_LEFT, pygame.K_TAB, pygame.K_s, pygame.K_u):
        press(key)
    press(pygame.K_s, "", pygame.KMOD_LCTRL)
    assert read() == []
    press(pygame.K_h, "h")
    press(pygame.K_p, "p")
    assert read(calibrating=True) == [Ui("hud"), Command("panic", {})]
