"""Plays the developer of scripts/dev.sh's banner: runs its three examples as printed.

    dev_client.py OUTPUT_FILE

Reads the banner from OUTPUT_FILE (dev.sh's output), gets a token with example 1's command,
connects with the WebSocket URL of example 1, runs example 3 (the responder's fan-out) and
example 2 (a post, with the connection id from the log) and checks what the client receives,
then closes with code 4000. Exit 0 when all of it happened.

    dev_client.py OUTPUT_FILE --hold

Connects as example 1 does and holds the connection open until the server closes it.
"""
import asyncio
import json
import re
import subprocess
import sys

from websockets.asyncio.client import connect


def examples(text):
    return [line.strip()[2:] for line in text.splitlines() if line.startswith("  $ ")]


def shell(command, env=None):
    return subprocess.run(["bash", "-c", command], check=True, capture_output=True, text=True, env=env).stdout


async def main(output_file, hold=False):
    with open(output_file, encoding="utf-8") as f:
        banner = f.read()
    token_cmd, connect_cmd, post_cmd, invoke_cmd = examples(banner)
    token = shell(token_cmd + ' && printf %s "$TOKEN"')
    url = re.search(r'"(ws://[^"]+)"', connect_cmd).group(1).replace("$TOKEN", token)
    if hold:
        async with connect(url) as ws:
            print("held", flush=True)
            await ws.wait_closed()
        return
    async with connect(url) as ws:
        result = json.loads(shell(invoke_cmd))
        assert result.get("statusCode") == 200, result
        envelope = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert envelope["payload"] == {"text": "Processando…"}, envelope
        with open(output_file, encoding="utf-8") as f:
            ids = [i for i in re.findall(r"\[ws-local\] \$connect (\S+) accepted", f.read()) if i != "<id>"]
        assert ids, "no $connect line in the log"
        shell(post_cmd.replace("CONNECTION_ID", ids[-1]))
        assert await asyncio.wait_for(ws.recv(), 10) == "Olá from the Management API"
        await ws.close(code=4000, reason="example done")
    print(ids[-1])


asyncio.run(main(sys.argv[1], hold="--hold" in sys.argv[2:]))
