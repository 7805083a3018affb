"""The console's pages run only code and fonts from the console's own origin (a Content-Security-Policy).

flet-web 1.0.5's page asks the browser for a script from a public CDN at start
(``cdn.jsdelivr.net/npm/@rive-app/flutter-native-wasm/.../rive_native.js``, Rive's animation
runtime, which the console never uses), and Flutter fetches its fallback fonts from Google's.
Offline (as on the machines this is tested on) the request just fails; on an operator's machine
with internet access it would run a third party's script inside the console's origin, beside the
session token. The policy keeps every script, font, image, connection and frame to the console's
own origin: the CDN request is refused by the browser before it is sent.

What Flutter's web engine needs of it, and no more: its inline bootstrap scripts and styles
(``'unsafe-inline'``: flet-web's index.html carries them and is rewritten per build, so hashes
would go stale), WebAssembly compilation (``'wasm-unsafe-eval'``, not ``'unsafe-eval'``), images
and fonts it makes as ``data:``/``blob:`` URLs, and its websocket to the same host (``'self'``
covers ws: of the same origin).
"""

from __future__ import annotations

from gui.renderer import ASGIApp, Message, Receive, Scope, Send

POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data: blob:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    )
)
HEADER = b"content-security-policy"


def own_origin_only(app: ASGIApp) -> ASGIApp:
    """``app`` with the console's Content-Security-Policy on every HTTP response."""

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
                message["headers"] = [*headers, (HEADER, POLICY.encode())]
            await send(message)

        await app(scope, receive, send_with_policy)

    return serve
