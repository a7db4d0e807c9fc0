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
    assert keys == ["F", "H", "T", "C", "P", "M", "+  −", "K", "Space", "?  /", "Esc Esc"]
    assert all("\t" in line for line in HELP_LINES)
