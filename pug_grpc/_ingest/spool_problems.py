"""How the spool tells of a problem with its files: logged and reported (a
:class:`~pug_grpc.StorageError`) once per cause and file, in words saying what became of the
queued items, so that a failing disk is one report, not one per request.
"""

from __future__ import annotations

import logging

from pug_grpc._ingest.spool_files import cause_of
from pug_grpc._ingest.storage import ProblemReporter, StorageError

__all__ = ["Problems"]

_log = logging.getLogger("pug_grpc.storage")


class Problems:
    """The problems a storage has told of; ``report`` is the client's (set when it opens)."""

    def __init__(self) -> None:
        self.report: ProblemReporter = lambda _error: None
        self._said: set[tuple[str, str]] = set()

    def forget(self) -> None:
        """Start afresh (a storage closed or forked tells of its problems again)."""
        self._said = set()

    def say(self, cause: str, path: str, message: str) -> None:
        """Log and report a problem once per (cause, path)."""
        if (cause, path) in self._said:
            return
        self._said.add((cause, path))
        _log.error("%s", message)
        try:
            self.report(StorageError(message, path=path, cause=cause))
        except Exception:
            _log.exception("reporting a storage problem failed")

    def cannot_create(self, directory: str, exc: BaseException) -> None:
        self.say(
            cause_of(exc),
            directory,
            f"cannot create a spool in {directory}: {cause_of(exc)} ({exc}); queued events "
            f"stay in memory for this process and are lost if it dies",
        )

    def failed(
        self,
        path: str,
        doing: str,
        exc: BaseException,
        *,
        moved: int,
        lost: int,
        fate: str,
        own_file_left: bool,
    ) -> None:
        """A file failed while ``doing``: ``moved`` items went to memory, ``lost`` could not be
        read, ``fate`` says what became of the file."""
        cause = cause_of(exc)
        next_step = (
            "the spool goes on with this process's own file"
            if own_file_left
            else "new events stay in memory for this process and are lost if it dies"
        )
        lost_text = f", {lost} could not be read and are reported as lost" if lost else ""
        self.say(
            cause,
            path,
            f"spool file {path} failed while {doing}: {cause} ({exc}); {moved} queued "
            f"item(s) moved to memory{lost_text}; {fate}; {next_step}",
        )
