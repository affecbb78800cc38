"""Executes a Jupyter notebook with nbclient (Debian's python3-nbclient), as `jupyter nbconvert
--execute` does, and writes the executed copy.

    /usr/bin/python3 tests/run_notebook.py IN.ipynb OUT.ipynb [--kernel deno] [--timeout 600]

The kernel runs in the notebook's folder. A failing cell stops the run with exit status 1 and its
error on stderr. One difference from nbconvert: after a cell's kernel goes idle, late output
messages of that cell are still collected until the channel has been quiet for `--settle`
seconds (default 0.3) before the next cell is sent. Deno's kernel (2.9) forwards stdout and some
display messages after it reports idle and then tags them with the request running at that moment,
so with nbconvert a cell's output can be lost or shown under the next cell; interactive use, one
cell at a time, is not affected.
"""

import argparse
import os
import queue
import sys

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionComplete, CellExecutionError
from nbclient.util import ensure_async


class SettlingClient(NotebookClient):
    """An nbclient that waits for a cell's late output before running the next cell."""

    settle = 0.3

    async def _async_poll_output_msg(self, parent_msg_id, cell, cell_index):
        await super()._async_poll_output_msg(parent_msg_id, cell, cell_index)
        while True:
            try:
                msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=self.settle))
            except queue.Empty:
                return
            if msg["parent_header"].get("msg_id") == parent_msg_id:
                try:
                    self.process_message(msg, cell, cell_index)
                except CellExecutionComplete:
                    pass


def merge_streams(outputs):
    """Joins consecutive stream outputs of one stream (late messages arrive one line each)."""
    merged = []
    for output in outputs:
        last = merged[-1] if merged else None
        if output.output_type == "stream" and last is not None and last.output_type == "stream" and last.name == output.name:
            last.text += output.text
        else:
            merged.append(output)
    return merged


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook")
    parser.add_argument("output")
    parser.add_argument("--kernel", default=None, help="kernel name (default: the notebook's)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    parser.add_argument("--settle", type=float, default=SettlingClient.settle)
    args = parser.parse_args()
    nb = nbformat.read(args.notebook, as_version=4)
    options = {"timeout": args.timeout, "resources": {"metadata": {"path": os.path.dirname(os.path.abspath(args.notebook))}}}
    if args.kernel:
        options["kernel_name"] = args.kernel
    client = SettlingClient(nb, **options)
    client.settle = args.settle
    try:
        client.execute()
    except CellExecutionError as error:
        print(f"{args.notebook}: a cell failed\n{error}", file=sys.stderr)
        return 1
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = merge_streams(cell.outputs)
    nbformat.write(nb, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
