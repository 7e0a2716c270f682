"""The report for people: one section per question, label and value columns, no colours."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["render_text"]

_INDENT = " " * 21  # under the value column


def _rows(rows: list[tuple[str, object]]) -> list[str]:
    return [f"  {label:<18} {value}" for label, value in rows if value is not None]


def _versions(versions: Mapping[str, Any]) -> list[str]:
    rows: list[tuple[str, object]] = [
        ("python", versions["python"]),
        ("executable", versions["executable"]),
        ("platform", versions["platform"]),
    ]
    rows += [(name, v or "not installed") for name, v in versions["packages"].items()]
    return ["Versions", *_rows(rows)]


def _backend(backend: Mapping[str, Any]) -> list[str]:
    used = "used " + backend["used"] if backend["used"] != "no" else "NOT used"
    rows: list[tuple[str, object]] = [("selected", backend["selected"]), ("menda-keyring", used)]
    if backend.get("chain"):
        rows.append(("chain", f"{len(backend['chain'])} backends, in order:"))
    lines = ["Keyring backend", *_rows(rows)]
    lines += [f"{_INDENT}  {n}. {name}" for n, name in enumerate(backend.get("chain", []), 1)]
    if backend["used"] == "no":
        lines += _rows(
            [
                ("why", backend.get("reason")),
                ("keyring config", backend["config_file"]),
                ("PYTHON_KEYRING_BACKEND", backend.get("python_keyring_backend")),
            ]
        )
    return lines


def _url(url: Mapping[str, Any]) -> list[str]:
    rows: list[tuple[str, object]] = [("given", url["given"])]
    if url["recognised"]:
        rows += [
            ("recognised", "yes"),
            ("endpoint", url["endpoint"]),
            ("domain", url["domain"]),
            ("domain owner", url["domain_owner"]),
            ("region", url["region"]),
            ("repository", url["repository"] or "(none in the URL)"),
            ("format", url["format"] or "(none in the URL)"),
            ("username", url.get("username")),
        ]
        rows += [("problem", problem) for problem in url.get("problems", [])]
    else:
        rows += [("recognised", "no: not recognised by menda-keyring"), ("why", url["reason"])]
    return ["URL", *_rows(rows)]


def _identity(identity: Mapping[str, Any]) -> list[str]:
    if not identity["ok"]:
        error = identity["error"]
        return ["Identity", *_rows([("error", error["class"]), ("message", error["message"])])]
    rows: list[tuple[str, object]] = [
        ("source", identity["source"]),
        ("auth type", identity["auth_type"]),
        ("host", identity["host"]),
        ("client id", identity["client_id"]),
        ("cache key", identity["cache_key"]),
        ("config file", identity["config_path"]),
    ]
    return ["Identity", *_rows(rows)]


def _present(flag: object) -> str:
    return "present" if flag else "absent"


def _login(login: Mapping[str, Any]) -> list[tuple[str, object]]:
    where = login["path"]
    if not login["exists"]:
        where += " (does not exist)"
    elif login["mode"] is not None:
        where += f" (mode {login['mode']})"
    if login.get("problem"):
        where += f": {login['problem']}"
    rows: list[tuple[str, object]] = [
        ("login file", where),
        ("login", f"profile '{login['profile']}': {login['detail']}"),
    ]
    if "has_refresh_token" in login:
        rows.append(
            (
                "",
                f"refresh token {_present(login['has_refresh_token'])}, id token "
                f"{_present(login['has_id_token'])} (presents the {login['presents']})",
            )
        )
    if login.get("mode_note"):
        rows.append(("", f"note: {login['mode_note']}"))
    return rows


def _entry(label: str, entry: Mapping[str, Any]) -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = [(label, entry["path"]), ("", entry["detail"])]
    written_for = entry.get("written_for")
    if written_for:
        who = ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in written_for.items())
        rows.append(("", f"written for {who}"))
    return rows


def _cache(cache: Mapping[str, Any]) -> list[str]:
    exists = "" if cache["exists"] else " (does not exist yet)"
    rows: list[tuple[str, object]] = [("directory", cache["directory"] + exists)]
    if cache.get("problem"):
        rows.append(("", f"not used: {cache['problem']}"))
    if "login" in cache:
        rows += _login(cache["login"])
    if "access_token" in cache:
        rows += _entry("access token", cache["access_token"])
    if "registry_token" in cache:
        rows += _entry("registry token", cache["registry_token"])
    return ["Token cache", *_rows(rows)]


def _step(label: str, step: Mapping[str, Any], done: str) -> list[tuple[str, object]]:
    if "skipped" in step:
        return [(label, f"skipped: {step['skipped']}")]
    if not step["ok"]:
        error = step["error"]
        return [(label, f"failed [{error['class']}]"), ("", error["message"])]
    return [(label, done)]


def _check(check: Mapping[str, Any]) -> list[str]:
    lines = ["Check (live calls; the cached registry token is neither used nor replaced)"]
    if "skipped" in check:
        return [*lines, *_rows([("skipped", check["skipped"])])]
    access = check["bearer"]
    rows: list[tuple[str, object]] = []
    if access["ok"]:
        done = f"{access['source']}; presents the {access['presents']}"
        rows += _step("token to present", access, done)
        rows += [("", access.get("note")), ("", access.get("expires"))]
    else:
        rows += _step("token to present", access, "")
    me = check["whoami"]
    who = ", ".join(
        f"{label} {me[name]}"
        for label, name in (
            ("tenant", "tenant_id"),
            ("username", "username"),
            ("identity type", "identity_type"),
            ("role", "user_role"),
        )
        if me.get(name) is not None
    )
    rows += _step("whoami", me, who)
    exchange = check["exchange"]
    rows += _step(
        "registry token",
        exchange,
        f"live exchange made: token present, username {exchange.get('username')}; "
        f"{exchange.get('expires')}",
    )
    requests = check["requests"]
    listed = ":" if requests else ""
    rows.append(("took", f"{check['elapsed_ms']} ms, {len(requests)} request(s){listed}"))
    lines += _rows(rows)
    for request in requests:
        # A failed attempt's error is the same text as the step's message above.
        status = request["status"] if request["status"] is not None else "failed"
        lines.append(f"  {request['method']} {request['url']} -> {status} in {request['ms']} ms")
    return lines


def render_text(report: Mapping[str, Any]) -> str:
    """The whole report as text, ending with the verdict and the problems found."""
    sections = [_versions(report["versions"]), _backend(report["backend"])]
    if "url" in report:
        sections.append(_url(report["url"]))
    sections.append(_identity(report["identity"]))
    if "cache" in report:
        sections.append(_cache(report["cache"]))
    if "check" in report:
        sections.append(_check(report["check"]))
    if report["warnings"]:
        sections.append(["Warnings", *(f"  - {w}" for w in report["warnings"])])
    if report["ok"]:
        verdict = "the live calls succeeded" if "check" in report else "no problem found"
        result = [f"Result: OK, {verdict} (exit status {report['exit_status']})"]
    else:
        count = len(report["problems"])
        result = [
            f"Result: {count} problem{'s' if count > 1 else ''} "
            f"(exit status {report['exit_status']})",
            *(f"  - {p}" for p in report["problems"]),
        ]
    sections.append(result)
    return "\n\n".join("\n".join(section) for section in sections) + "\n"
