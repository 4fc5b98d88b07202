"""The real balrogclient against `stagelib service balrog`: a release, 4 platforms x 3
locales submitted concurrently (retrying data_version conflicts as balrogscript
does), a rule, then the update endpoint serves the release. Only balrogclient's
token fetch is pointed at the stand-in's plain-HTTP /oauth/token (the real one
always uses https); every Balrog request goes over HTTP to the stand-in."""
import json
import threading
import time
import xml.dom.minidom

import pytest
import requests
from balrogclient import api as balrog_api
from balrogclient import Release, SingleLocale

PLATFORMS = ["WINNT_x86_64-msvc", "Darwin_x86_64-gcc3-u-i386-x86_64", "Linux_x86_64-gcc3", "WINNT_aarch64-msvc-aarch64"]
LOCALES = ["en-US", "de", "ja"]
NAME = "Firefox-140.0b3-build1"


@pytest.fixture
def balrog(service_factory, monkeypatch):
    svc = service_factory("balrog", "--agent-interval", "1s", secret="balrog-secret", user="balrog-stage-ffxbld")

    def token_over_http(secrets, session):
        r = session.post(f"{svc.url}/oauth/token", data=json.dumps(dict(
            client_id=secrets["client_id"], client_secret=secrets["client_secret"],
            audience=secrets["audience"], grant_type="client_credentials")),
            headers={"Content-Type": "application/json"})
        r.raise_for_status()
        return r.json()["access_token"]

    monkeypatch.setattr(balrog_api, "_get_auth0_token", token_over_http)
    return svc


def kwargs(svc):
    secrets = {"domain": "unused", "client_id": svc.user, "client_secret": svc.secret, "audience": "balrog"}
    return dict(auth0_secrets=secrets, api_root=f"{svc.url}/api")


def retry(fn, attempts=20):
    """balrogscript retries submissions that hit a data_version conflict."""
    for i in range(attempts):
        try:
            return fn()
        except requests.HTTPError as e:
            if e.response.status_code != 400 or i == attempts - 1:
                raise
            time.sleep(0.05 * (i + 1))


def test_release_builds_rule_and_update(balrog):
    kw = kwargs(balrog)
    toplevel = {
        "appVersion": "140.0", "displayVersion": "140.0 Beta 3", "updateLine": [
            {"for": {}, "fields": {"detailsURL": "https://www.mozilla.org/%LOCALE%/firefox/140.0beta/releasenotes/", "type": "minor"}}],
        "fileUrls": {"*": {"completes": {"*": "http://127.0.0.1/?product=firefox-140.0b3-complete&os=%OS_BOUNCER%&lang=%LOCALE%"}}},
        "platforms": {p: {"OS_BOUNCER": "win64", "OS_FTP": "win64"} for p in PLATFORMS},
    }
    Release(name=NAME, **kw).update_release(product="Firefox", hashFunction="sha512",
                                             releaseData=json.dumps(toplevel), schemaVersion=9)
    errors = []

    def submit(platform, locale):
        build = {"buildID": "20250601000000", "appVersion": "140.0", "displayVersion": "140.0 Beta 3",
                 "completes": [{"from": "*", "filesize": 1234, "hashValue": "ab" * 64}]}
        try:
            retry(lambda: SingleLocale(name=NAME, build_target=platform, locale=locale, **kw).update_build(
                product="Firefox", hashFunction="sha512", buildData=json.dumps(build), schemaVersion=9))
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(repr(e))

    threads = [threading.Thread(target=submit, args=(p, l)) for p in PLATFORMS for l in LOCALES]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors

    blob, version = Release(name=NAME, **kw).get_data()
    for p in PLATFORMS:
        assert sorted(blob["platforms"][p]["locales"]) == sorted(LOCALES), p
    assert version >= 1 + len(PLATFORMS) * len(LOCALES)

    token = balrog_api._get_auth0_token(kw["auth0_secrets"], requests.Session())
    r = requests.post(f"{balrog.url}/api/rules", json={
        "product": "Firefox", "channel": "beta", "mapping": NAME, "backgroundRate": 100,
        "priority": 100, "update_type": "minor"}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    rule_id = int(r.text)

    r = requests.get(f"{balrog.url}/update/6/Firefox/139.0/20250501000000/Linux_x86_64-gcc3/de/beta/"
                     "Linux/ISET:SSE3,MEM:8192,JAWS:0/default/default/update.xml")
    assert r.status_code == 200
    assert r.headers["Rule-ID"] == str(rule_id)
    doc = xml.dom.minidom.parseString(r.text)
    update = doc.getElementsByTagName("update")[0]
    assert update.getAttribute("appVersion") == "140.0"
    assert update.getAttribute("detailsURL") == "https://www.mozilla.org/de/firefox/140.0beta/releasenotes/"
    patch = doc.getElementsByTagName("patch")[0]
    assert patch.getAttribute("type") == "complete"
    assert patch.getAttribute("URL") == "http://127.0.0.1/?product=firefox-140.0b3-complete&os=win64&lang=de"
    assert patch.getAttribute("size") == "1234"


def test_writes_need_the_token(balrog):
    r = requests.put(f"{balrog.url}/api/releases/x", json={"name": "x", "product": "p", "blob": "{}"})
    assert r.status_code == 401
    r = requests.put(f"{balrog.url}/api/releases/x", json={"name": "x", "product": "p", "blob": "{}"},
                     headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    assert requests.get(f"{balrog.url}/api/releases/x").status_code == 404


def test_token_fetch_over_https_without_any_stub(service_factory, monkeypatch):
    """balrogclient unmodified: its Auth0 token comes from the stand-in's HTTPS
    endpoint (self-signed certificate trusted through REQUESTS_CA_BUNDLE)."""
    import os
    svc = service_factory("balrog", "--tls-listen", "127.0.0.1:0", secret="tls-secret", user="ffxbld")
    for _ in range(100):
        if os.path.exists(os.path.join(svc.data_dir, "tls-addr")):
            break
        time.sleep(0.05)
    with open(os.path.join(svc.data_dir, "tls-addr")) as f:
        tls_addr = f.read().strip()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", os.path.join(svc.data_dir, "ca.pem"))
    balrog_api._token_cache.clear()
    secrets = {"domain": tls_addr, "client_id": svc.user, "client_secret": svc.secret, "audience": "balrog"}
    rel = Release(name="Firefox-141.0-build1", auth0_secrets=secrets, api_root=f"{svc.url}/api")
    rel.update_release(product="Firefox", hashFunction="sha512",
                       releaseData=json.dumps({"appVersion": "141.0", "displayVersion": "141.0"}), schemaVersion=9)
    blob, version = rel.get_data()
    assert blob["appVersion"] == "141.0" and version == 2
    bad = dict(secrets, client_secret="wrong")
    balrog_api._token_cache.clear()
    with pytest.raises(requests.HTTPError):
        Release(name="Firefox-142.0-build1", auth0_secrets=bad, api_root=f"{svc.url}/api").update_release(
            product="Firefox", hashFunction="sha512", releaseData="{}", schemaVersion=9)
