"""Helpers of the session tests: signing in to the dashboard over plain HTTP, cookies, form fields."""

from __future__ import annotations

import re

import httpx

from tests.http_server import serving as serving

ADMIN = ("read", "write", "admin")


def field(page: str, name: str) -> str:
    """A hidden form field's value in a page, as the browser would post it."""
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found is not None, f"no {name} field in the page"
    return found.group(1)


def sign_in(client: httpx.Client, token: str) -> httpx.Response:
    """The sign-in form, fetched and posted as a browser does (its nonce and cookie)."""
    form = client.get("/ui/login")
    assert form.status_code == 200, form.text
    data = {"token": token, "nonce": field(form.text, "nonce"), "next": "/ui/pauses"}
    return client.post("/ui/login", data=data)


def is_sign_in_redirect(response: httpx.Response) -> bool:
    return response.status_code == 303 and response.headers["location"].startswith("/ui/login?next=")


def use_cookie(client: httpx.Client, value: str) -> None:
    """Make ``value`` the client's session cookie (a copy taken earlier, or a forged one)."""
    from planner.ui.session import COOKIE

    client.cookies.delete(COOKIE)
    client.cookies.set(COOKIE, value, path="/ui")
