"""One address in front of several API processes, as a load balancer gives them in
production: each connection goes to the next backend in turn, and a backend that refuses
(killed, restarting) is skipped.

    python -m devstack.balancer LISTEN_PORT BACKEND_PORT,BACKEND_PORT,...
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def serve(listen_port: int, backends: list[int]) -> None:
    turns = itertools.cycle(backends)

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        for _ in range(len(backends)):
            with contextlib.suppress(OSError):
                return await asyncio.open_connection("127.0.0.1", next(turns))
        raise ConnectionRefusedError("no backend answers")

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            backend_r, backend_w = await connect()
        except OSError:
            client_w.close()
            return
        await asyncio.gather(_pipe(client_r, backend_w), _pipe(backend_r, client_w))

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    async with server:
        await server.serve_forever()


def main() -> None:
    listen, backends = int(sys.argv[1]), [int(port) for port in sys.argv[2].split(",")]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(listen, backends))


if __name__ == "__main__":
    main()
