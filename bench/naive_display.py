"""The frame-time bench's baseline (bench/frame_time.py ``naive``): a straightforward
renderer that redraws everything each frame (building, windows, text, QR code from
segno, legend cells, glows made fresh as alpha surfaces), as one would before caching
anything."""

from __future__ import annotations

import pygame
import segno

from billboard.display import Banner, rgb, window_rects
from billboard.engine.scene import Scene


class NaiveDisplay:
    """The baseline: everything drawn from scratch each frame."""

    def __init__(self, screen: pygame.Surface, banner: Banner) -> None:
        self.screen = screen
        self.banner = banner
        w, h = screen.get_size()
        self.font_big = pygame.font.Font(None, round(0.085 * h))
        self.font = pygame.font.Font(None, round(0.034 * h))
        self.facade = pygame.Rect(20, round(0.16 * h), round(0.62 * w), round(0.7 * h))
        self.panel = pygame.Rect(
            self.facade.right + 20, self.facade.y, w - self.facade.right - 40, h
        )

    def draw(self, scene: Scene) -> None:
        s = self.screen
        s.fill((0, 0, 0))
        call = f"Call {self.banner.phone} to play"
        s.blit(self.font_big.render(call, True, (255, 255, 255)), (20, 20))
        s.blit(
            self.font.render(f"{scene.bpm:.0f} BPM · {scene.key}", True, (255, 255, 255)),
            (1500, 20),
        )
        pygame.draw.rect(s, (16, 18, 26), self.facade)
        windows = window_rects(self.facade, scene.facade, None)
        for rect in windows:
            pygame.draw.rect(s, (30, 34, 48), rect)
            pygame.draw.rect(s, (58, 64, 86), rect, 2)
        for light in scene.lit:
            rect = windows[light.floor * scene.facade.bays + light.bay]
            r, g, b = rgb(light.color)
            glow = pygame.Surface((rect.width + 40, rect.height + 40), pygame.SRCALPHA)
            for k in range(4):  # concentric translucent rectangles as a halo
                alpha = round(40 * light.intensity)
                pygame.draw.rect(glow, (r, g, b, alpha), glow.get_rect().inflate(-10 * k, -10 * k))
            s.blit(glow, (rect.x - 20, rect.y - 20))
            t = light.intensity
            pygame.draw.rect(s, (round(r * t), round(g * t), round(b * t)), rect)
        qr = segno.make(self.banner.keypad_url or "", error="m")
        matrix = list(qr.matrix_iter(scale=1, border=4))
        module = 7
        for y, row in enumerate(matrix):
            for x, dark in enumerate(row):
                color = (0, 0, 0) if dark else (255, 255, 255)
                s.fill(
                    color,
                    (
                        self.panel.right - 300 + x * module,
                        self.panel.y + y * module,
                        module,
                        module,
                    ),
                )
        y = self.panel.y + 320
        for view in scene.tracks:
            s.blit(
                self.font.render(f"{view.name}  {view.display or 'free'}", True, (255, 255, 255)),
                (self.panel.x, y),
            )
            for i in range(scene.loop_steps):
                hit = i in view.pattern
                pygame.draw.rect(
                    s,
                    rgb(view.color) if hit else (40, 44, 60),
                    (self.panel.x + 30 + i * 19, y + 34, 16, 14),
                )
            y += 70
        for i in range(scene.loop_steps):
            color = (255, 255, 255) if i == scene.step % scene.loop_steps else (40, 44, 60)
            pygame.draw.rect(s, color, (20 + i * 37, self.facade.bottom + 20, 33, 40))
        pygame.display.flip()
