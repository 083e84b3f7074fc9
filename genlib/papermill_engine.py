"""Papermill's nbclient engine with nbclient's Output-widget mimic switched off: ``--engine genlib``.

Why: every ipywidgets ``interactive`` holds an Output widget. nbclient mimics the front end's Output
widget by answering each captured output with a comm message sent on the *shell* socket, from the
task that reads IOPub, while another task is waiting on that same socket for the cell's execute reply.
A ZMQ socket's file descriptor is edge-triggered and a send consumes its pending edge, so a reply that
lands in that window wakes nobody: the kernel is idle and the client waits forever (nbclient issue
312; it hung chapter 2 in 3 of 22 runs). Without the mimic nothing is sent during execution, and the
widget's figure is kept as an ordinary output of its cell. Time limits stay the backstop for any other
hang.

:mod:`genlib.run` registers this engine itself. The installed package also declares it as papermill's
``papermill.engine`` entry point, so plain papermill can use it on a widget chapter::

    jupytext --to ipynb -o - book/02_density_models.py | \\
        papermill - out.ipynb --engine genlib -p device cuda -k python3 --cwd book
"""
from __future__ import annotations

from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine

__all__ = ["Client", "Engine"]


class Client(PapermillNotebookClient):
    """Papermill's notebook client without the Output-widget mimic: nothing is sent on shell mid-cell."""

    def on_comm_open_jupyter_widget(self, msg):
        return None


class Engine(NBClientEngine):
    """Papermill's default engine, executing with :class:`Client`."""

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                 stderr_file=None, start_timeout=60, execution_timeout=None, **_):
        return Client(nb_man, kernel_name=kernel_name, timeout=execution_timeout,
                      startup_timeout=start_timeout, log_output=log_output, stdout_file=stdout_file,
                      stderr_file=stderr_file).execute()
