"""The rehearsal crowd's report: what it planned, sent and saw, and the verdict."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CrowdReport:
    via: str
    relay: str
    channel: str
    seed: int
    checked: bool
    callers: int
    style: str = ""  # how the callers pressed ("human", "steady"); "" for plans given
    callers_failed: int = 0
    joins_seen: int = 0  # callers whose join the subscriber saw
    leaves_seen: int = 0
    presses_planned: int = 0
    presses_sent: int = 0
    presses_seen: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    latency_max_ms: float | None = None
    errors: dict[str, int] = field(default_factory=dict)
    media_lag_max_ms: float | None = None  # twilio paths: how far behind real time
    music_frames: int | None = None  # twilio paths: the phone music's media sent back
    music_clears: int = 0
    interrupted: bool = False
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Every caller got through and, when checked, every press arrived once and
        in order, and every join and leave was seen."""
        if self.callers_failed or self.interrupted:
            return False
        if not self.checked:
            return True
        whole = self.joins_seen == self.leaves_seen == self.callers
        return whole and not (self.lost or self.duplicated or self.out_of_order)

    def render(self) -> str:
        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f} ms"

        played = f"{self.style} style" if self.style else "plans given"
        lines = [
            f"dialjam crowd: {self.callers} callers via {self.via} → {self.relay}, "
            f"channel {self.channel} ({played}, seed {self.seed}, {self.elapsed_s:.1f} s)",
            f"  callers     {self.callers}: {self.callers - self.callers_failed} got through, "
            f"{self.callers_failed} failed",
        ]
        if self.checked:
            lines += [
                f"  seen        {self.joins_seen} joins, {self.leaves_seen} leaves",
                f"  presses     {self.presses_planned} planned, {self.presses_sent} sent, "
                f"{self.presses_seen} seen: {self.lost} lost, {self.duplicated} duplicated, "
                f"{self.out_of_order} out of order",
                f"  latency     p50 {ms(self.latency_p50_ms)}, p99 {ms(self.latency_p99_ms)}, "
                f"max {ms(self.latency_max_ms)} (sent → seen by the subscriber)",
            ]
        else:
            lines.append(
                f"  presses     {self.presses_planned} planned, {self.presses_sent} sent "
                "(not checked: --no-check)"
            )
        if self.media_lag_max_ms is not None:
            note = (
                "  (the crowd fell behind real time: it, not the relay, may be the bottleneck)"
                if self.media_lag_max_ms > 100
                else ""
            )
            lines.append(f"  audio       at most {self.media_lag_max_ms:.1f} ms late{note}")
        if self.music_frames is not None:
            lines.append(
                f"  music       {self.music_frames} frames back ({self.music_frames * 0.02:.1f} s "
                f"of audio in all), {self.music_clears} clears"
            )
        if self.errors:
            lines.append("  errors      " + ", ".join(f"{k} ×{n}" for k, n in self.errors.items()))
        else:
            lines.append("  errors      none")
        if self.interrupted:
            verdict = "INTERRUPTED: the crowd was stopped before the end"
        elif self.ok and self.checked:
            verdict = "PASS: every caller got through; every press arrived once, in order"
        elif self.ok:
            verdict = "PASS: every caller got through (arrival not checked)"
        else:
            verdict = "FAIL: " + "; ".join(self.problems())
        lines.append(f"  verdict     {verdict}")
        return "\n".join(lines)

    def problems(self) -> list[str]:
        out = []
        if self.callers_failed:
            out.append(f"{self.callers_failed} callers failed")
        if self.checked:
            if self.lost or self.duplicated or self.out_of_order:
                out.append(
                    f"{self.lost} lost, {self.duplicated} duplicated, "
                    f"{self.out_of_order} out of order"
                )
            through = self.callers - self.callers_failed
            if self.joins_seen != through or self.leaves_seen != through:
                out.append(
                    f"joins seen {self.joins_seen}/{through}, "
                    f"leaves seen {self.leaves_seen}/{through} of the callers who got through"
                )
        return out or ["see above"]
