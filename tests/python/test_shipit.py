"""The real shipitapi (Release_V2.getRelease / update_status, Hawk-signed by
mohawk) against `stagelib service shipit`."""
import json

import mohawk
import pytest
import requests
from shipitapi import Release_V2


def signed(svc, method, path, body):
    url = f"{svc.url}{path}"
    sender = mohawk.Sender({"id": svc.user, "key": svc.secret, "algorithm": "sha256"}, url, method,
                           content=body, content_type="application/json")
    return requests.request(method, url, data=body, headers={
        "Authorization": sender.request_header, "Content-Type": "application/json"})


@pytest.fixture
def shipit(service_factory):
    return service_factory("shipit", secret="tc-access-token", user="project/releng/shipit/staging")


def create(svc, version="140.0b3", build=1):
    body = json.dumps({"product": "firefox", "version": version, "branch": "releases/mozilla-beta",
                       "revision": "a" * 40, "build_number": build, "partial_updates": {}})
    return signed(svc, "POST", "/releases", body)


def test_shipitapi_get_and_mark_shipped(shipit):
    r = create(shipit)
    assert r.status_code == 201, r.text
    name = r.json()["name"]
    assert name == "Firefox-140.0b3-build1"
    client = Release_V2(shipit.user, shipit.secret, api_root=shipit.url, retry_attempts=1)
    release = client.getRelease(name)
    assert release["status"] == "scheduled"
    assert [p["name"] for p in release["phases"]] == ["promote_firefox", "push_firefox", "ship_firefox"]
    client.update_status(name, status="shipped")
    release = client.getRelease(name)
    assert release["status"] == "shipped" and release["completed"]
    # The default listing shows scheduled releases only; shipped ones on request.
    assert requests.get(f"{shipit.url}/releases").json() == []
    shipped = requests.get(f"{shipit.url}/releases", params={"status": "shipped,aborted,scheduled"}).json()
    assert [r["name"] for r in shipped] == [name]


def test_bad_hawk_is_refused_and_changes_nothing(shipit):
    r = create(shipit)
    name = r.json()["name"]
    wrong = Release_V2(shipit.user, "not-the-key", api_root=shipit.url, retry_attempts=1)
    with pytest.raises(requests.HTTPError) as e:
        wrong.update_status(name, status="shipped")
    assert e.value.response.status_code == 401
    r = requests.patch(f"{shipit.url}/releases/{name}", json={"status": "shipped"})
    assert r.status_code == 401
    assert requests.get(f"{shipit.url}/releases/{name}").json()["status"] == "scheduled"


def test_phases_build_numbers_and_ordering(shipit):
    assert create(shipit, "140.0b10").status_code == 201
    assert create(shipit, "140.0b9").status_code == 201
    assert create(shipit, "140.0b9", build=3).status_code == 400, "build 2 comes first"
    assert create(shipit, "140.0b9", build=2).status_code == 201
    listed = [r["name"] for r in requests.get(f"{shipit.url}/releases").json()]
    assert listed == ["Firefox-140.0b9-build1", "Firefox-140.0b9-build2", "Firefox-140.0b10-build1"]
    r = signed(shipit, "PUT", "/releases/Firefox-140.0b10-build1/push_firefox", "")
    assert r.status_code == 200 and r.json()["actionTaskId"]
    phases = requests.get(f"{shipit.url}/releases/Firefox-140.0b10-build1").json()["phases"]
    assert phases[0]["skipped"] and phases[0]["submitted"] and not phases[2]["submitted"]
    assert signed(shipit, "PUT", "/releases/Firefox-140.0b10-build1/push_firefox", "").status_code == 409
    assert requests.get(f"{shipit.url}/releases/Nope-1.0-build1").status_code == 404


def test_mark_as_shipped_task_from_the_fixtures(shipit):
    """The release named by shipitscript's example task, marked shipped the way
    shipitscript does (PATCH status, then read back)."""
    import os
    path = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "fixtures", "releng", "shipit",
                        "shipitscript-mark-as-shipped-task.json")
    with open(path) as f:
        name = json.load(f)["payload"]["release_name"]
    product, version, build = name.split("-")
    body = json.dumps({"product": product.lower(), "version": version, "branch": "releases/mozilla-beta",
                       "revision": "c" * 40, "build_number": int(build.replace("build", ""))})
    r = signed(shipit, "POST", "/releases", body)
    assert r.status_code == 201, r.text
    assert r.json()["name"] == name
    client = Release_V2(shipit.user, shipit.secret, api_root=shipit.url, retry_attempts=1)
    client.update_status(name, status="shipped")
    assert client.getRelease(name)["status"] == "shipped"
