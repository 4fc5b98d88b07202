"""The real bouncerscript (submission and aliases actions) against
`stagelib service bouncer`. Its redirector URL constant is pointed at the
stand-in, so nothing leaves the machine."""
import asyncio
import json
import os

import aiohttp
import pytest
import requests
from bouncerscript import script as bouncer_script
from bouncerscript import task as bouncer_task
from scriptworker.context import Context

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "fixtures", "releng", "bouncer")
SERVER = "project:releng:bouncer:server:staging"


def load_task(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return json.load(f)


async def run_action(svc, action, task):
    context = Context()
    context.config = {
        "bouncer_config": {SERVER: {"api_root": f"{svc.url}/api", "timeout_in_seconds": 30,
                                    "username": svc.user, "password": svc.secret}},
    }
    context.server = SERVER
    context.task = task
    async with aiohttp.ClientSession() as session:
        context.session = session
        await action(context)


@pytest.fixture
def bouncer(service_factory, monkeypatch):
    svc = service_factory("bouncer", "--download-base", "http://127.0.0.1:9/pub", secret="bouncer-pw", user="releng")
    monkeypatch.setitem(bouncer_task.GO_BOUNCER_URL_TMPL, SERVER, f"{svc.url}/?product={{}}&print=yes")
    return svc


def test_submission_creates_products_and_locations(bouncer):
    task = load_task("bouncerscript-task_submission.json")
    asyncio.run(run_action(bouncer, bouncer_script.bouncer_submission, task))
    for product, cfg in task["payload"]["submission_entries"].items():
        show = requests.get(f"{bouncer.url}/api/product_show", params={"product": product}).text
        assert f'name="{product}"' in show
        for locale in task["payload"]["locales"]:
            assert f'<language locale="{locale}"/>' in show
        locs = requests.get(f"{bouncer.url}/api/location_show", params={"product": product}).text
        for os_name, path in cfg["paths_per_bouncer_platform"].items():
            assert f'os="{os_name}">{path}</location>' in locs
            r = requests.get(f"{bouncer.url}/", params={"product": product, "os": os_name, "lang": "ro"},
                             allow_redirects=False)
            assert r.status_code == 302
            assert r.headers["Location"] == "http://127.0.0.1:9/pub" + path.replace(":lang", "ro")
    # Running the same task again is idempotent.
    asyncio.run(run_action(bouncer, bouncer_script.bouncer_submission, task))


def test_aliases_are_updated_and_checked_through_the_redirector(bouncer):
    aliases = load_task("bouncerscript-task_aliases.json")
    auth = (bouncer.user, bouncer.secret)
    for product in set(aliases["payload"]["aliases_entries"].values()):
        r = requests.post(f"{bouncer.url}/api/product_add/", data={"product": product, "languages": ["en-US"]}, auth=auth)
        assert r.status_code == 200, r.text
        r = requests.post(f"{bouncer.url}/api/location_add/", auth=auth, data={
            "product": product, "os": "win", "path": f"/devedition/releases/99.0b2/win32/:lang/{product}.exe"})
        assert r.status_code == 200, r.text
    asyncio.run(run_action(bouncer, bouncer_script.bouncer_aliases, aliases))
    for alias, product in aliases["payload"]["aliases_entries"].items():
        a = requests.get(f"{bouncer.url}/", params={"product": alias, "print": "yes"}).text
        p = requests.get(f"{bouncer.url}/", params={"product": product, "print": "yes"}).text
        assert a == p and a.endswith(f"{product}.exe"), (a, p)


def test_wrong_password_is_refused(bouncer):
    r = requests.post(f"{bouncer.url}/api/product_add/", data={"product": "X"}, auth=("releng", "nope"))
    assert r.status_code == 401
    assert "<products/>" in requests.get(f"{bouncer.url}/api/product_show", params={"product": "X"}).text
