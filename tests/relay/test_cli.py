"""`python -m relay` as a real process: start, announce, shut down cleanly."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
from pathlib import Path

import aiohttp
import pytest

from tests.support.processes import free_port, start_process, wait_for_line


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_closes_every_client_with_1001_and_exits_0(sig: signal.Signals) -> None:
    port = free_port()
    proc = await start_process("--host", "127.0.0.1", "--port", str(port))
    try:
        lines = await wait_for_line(proc, "health:")
        assert any("/keypad?channel=dialjam" in line for line in lines)
        assert any("#token=" in line for line in lines)  # the console link carries it
        async with aiohttp.ClientSession() as session:
            clients = [await session.ws_connect(f"ws://127.0.0.1:{port}/ws") for _ in range(3)]
            await clients[0].send_str('{"type":"subscriber","id":"dialjam","v":2}')
            await clients[0].receive()
            proc.send_signal(sig)
            for ws in clients:
                msg = await asyncio.wait_for(ws.receive(), 10)
                assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 1001
        assert await asyncio.wait_for(proc.wait(), 15) == 0
        assert proc.stderr is not None
        stderr = (await proc.stderr.read()).decode()
        assert "Traceback" not in stderr
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_bad_config_file_is_explained_without_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "dialjam.toml"
    config.write_text("[relay]\nport = 'eighty'\n")
    proc = await start_process("--config", str(config))
    _, stderr = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 2
    assert "port must be a whole number" in stderr.decode()
    assert "Traceback" not in stderr.decode()


async def test_relays_sharing_a_backplane_refuse_to_make_up_their_secrets() -> None:
    # Sessions, pseudonyms and tokens must hold on every relay: each must be told them.
    proc = await start_process(
        "--host", "127.0.0.1", "--port", "0", "--backplane", "redis://127.0.0.1:1/0",
        env={"DIALJAM_OPERATOR_TOKEN": "", "DIALJAM_BILLBOARD_TOKEN": ""},
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 2
    text = stderr.decode()
    assert "operator_token, billboard_token, session_key" in text and "the same on every" in text
    assert "Traceback" not in text


async def test_a_port_in_use_is_explained_without_a_traceback() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = await start_process("--host", "127.0.0.1", "--port", str(port))
        _, stderr = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in stderr.decode()
    assert "Traceback" not in stderr.decode()


async def test_the_config_file_and_environment_set_the_relay(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "dialjam.toml"
    config.write_text(
        f'[relay]\nhost = "127.0.0.1"\nport = {port}\nchannel = "tower"\n'
        'operator_token = "op-token-from-file"\nbillboard_token = "bb-token-from-file"\n'
    )
    proc = await start_process(
        "--config", str(config), env={"DIALJAM_PUBLIC_URL": "https://jam.example.org"}
    )
    try:
        lines = await wait_for_line(proc, "health:")
        text = "".join(lines)
        assert "https://jam.example.org/keypad?channel=tower" in text
        assert "made up" not in text
        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": "Bearer op-token-from-file"}
            url = f"http://127.0.0.1:{port}/publish/tower:control"
            async with session.post(url, json={"name": "panic"}, headers=headers) as resp:
                assert resp.status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0


def test_what_was_made_up_for_the_run_is_said_once_at_start() -> None:
    from relay.config import RelayConfig, fill_tokens
    from relay.runtime import announce

    config, made_up = fill_tokens(RelayConfig(public_url="https://jam.example.org"))
    lines: list[str] = []
    announce(config, made_up, lines.append)
    text = "\n".join(lines)
    assert text.count("made up for this run (operator, billboard)") == 1
    assert text.count("pseudonyms keyed for this run only") == 1
    assert f"billboard token: {config.billboard_token}" in text
    kept, nothing = fill_tokens(RelayConfig(operator_token="op", billboard_token="bb"))
    lines.clear()
    announce(kept, nothing, lines.append)
    assert nothing == [] and "made up" not in "\n".join(lines)
    assert "pseudonyms" not in "\n".join(lines)


async def test_the_relay_checks_its_public_address_at_start_and_says_what_it_found() -> None:
    port, nobody = free_port(), free_port()
    # Its own address: this relay answers the probe. Then an address where nothing listens.
    ours = rf"public: +reachable at http://127\.0\.0\.1:{port} \(answered in \d+ ms\)"
    refused = r"warning: +public address NOT reachable at .*connection refused"
    for public, said in (
        (f"http://127.0.0.1:{port}", ours),
        (f"http://127.0.0.1:{nobody}", refused),
    ):
        proc = await start_process(
            "--host", "127.0.0.1", "--port", str(port), "--public-url", public
        )
        try:
            lines = await wait_for_line(proc, "public")
            assert re.search(said, lines[-1]), lines[-1]
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 15)
