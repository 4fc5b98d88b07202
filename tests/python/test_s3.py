"""Real boto3 against `stagelib service s3`: put, get, head, list v2 (prefix,
delimiter, pagination), copy, delete, delete_objects, multipart, presigned GET,
range GET, and the production fallback."""
import http.server
import threading

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

BUCKET = "net-mozaws-stage-delivery-firefox"


@pytest.fixture
def production():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"production:{self.path}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()


@pytest.fixture
def s3(service_factory, production):
    svc = service_factory("s3", "--bucket", BUCKET, "--fallback-url", production, "--public-read",
                          secret="s3-secret", user="AKIASTAGELIB")
    client = boto3.client("s3", endpoint_url=svc.url, aws_access_key_id=svc.user,
                          aws_secret_access_key=svc.secret, region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    return svc, client


def test_objects_round_trip(s3):
    svc, c = s3
    c.put_object(Bucket=BUCKET, Key="pub/firefox/candidates/140.0b3-candidates/build1/SHA512SUMS",
                 Body=b"abc", ContentType="text/plain", Metadata={"origin": "beetmover"})
    head = c.head_object(Bucket=BUCKET, Key="pub/firefox/candidates/140.0b3-candidates/build1/SHA512SUMS")
    assert head["ContentLength"] == 3
    assert head["Metadata"] == {"origin": "beetmover"}
    got = c.get_object(Bucket=BUCKET, Key="pub/firefox/candidates/140.0b3-candidates/build1/SHA512SUMS")
    assert got["Body"].read() == b"abc"
    assert got["ContentType"] == "text/plain"
    for i in range(5):
        c.put_object(Bucket=BUCKET, Key=f"pub/firefox/releases/140.0b3/linux-x86_64/l{i}/firefox.tar.bz2", Body=b"x" * i)
    pages = c.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="pub/firefox/releases/", PaginationConfig={"PageSize": 2})
    keys = [o["Key"] for p in pages for o in p.get("Contents", [])]
    assert len(keys) == 5 and keys == sorted(keys)
    listed = c.list_objects_v2(Bucket=BUCKET, Prefix="pub/firefox/", Delimiter="/")
    assert sorted(p["Prefix"] for p in listed["CommonPrefixes"]) == ["pub/firefox/candidates/", "pub/firefox/releases/"]
    c.copy_object(Bucket=BUCKET, Key="pub/firefox/releases/140.0b3/SHA512SUMS",
                  CopySource={"Bucket": BUCKET, "Key": "pub/firefox/candidates/140.0b3-candidates/build1/SHA512SUMS"})
    assert c.get_object(Bucket=BUCKET, Key="pub/firefox/releases/140.0b3/SHA512SUMS")["Body"].read() == b"abc"
    c.delete_object(Bucket=BUCKET, Key="pub/firefox/releases/140.0b3/SHA512SUMS")
    with pytest.raises(ClientError) as e:
        c.head_object(Bucket=BUCKET, Key="nothing/here-at-all")
    # A missing key redirects to production; boto3 sees the 307 as an error or follows it.
    r = requests.get(f"{svc.url}/{BUCKET}/pub/firefox/releases/1.0/x.mar", allow_redirects=False)
    assert r.status_code == 307
    deleted = c.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys]})
    assert len(deleted["Deleted"]) == 5
    assert c.list_objects_v2(Bucket=BUCKET, Prefix="pub/firefox/releases/").get("KeyCount") == 0


def test_keys_longer_than_a_file_name(s3):
    # S3 keys may be 1024 bytes; a file name only 255.
    _, c = s3
    key = "pub/firefox/alice-candidates/158.0b5-candidates/build1/beetmover-checksums/" + "x" * 600 + "/firefox.checksums.beet"
    c.put_object(Bucket=BUCKET, Key=key, Body=b"long")
    assert c.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"long"
    listed = c.list_objects_v2(Bucket=BUCKET, Prefix="pub/firefox/alice-candidates/")
    assert [o["Key"] for o in listed["Contents"]] == [key]
    c.delete_object(Bucket=BUCKET, Key=key)
    assert c.list_objects_v2(Bucket=BUCKET, Prefix="pub/firefox/alice-candidates/").get("KeyCount") == 0


def test_multipart_upload(s3):
    _, c = s3
    key = "pub/firefox/candidates/big.mar"
    up = c.create_multipart_upload(Bucket=BUCKET, Key=key)
    part1 = b"a" * (5 * 1024 * 1024)
    part2 = b"b" * 1024
    e1 = c.upload_part(Bucket=BUCKET, Key=key, UploadId=up["UploadId"], PartNumber=1, Body=part1)["ETag"]
    e2 = c.upload_part(Bucket=BUCKET, Key=key, UploadId=up["UploadId"], PartNumber=2, Body=part2)["ETag"]
    assert len(c.list_parts(Bucket=BUCKET, Key=key, UploadId=up["UploadId"])["Parts"]) == 2
    done = c.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=up["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert done["ETag"].strip('"').endswith("-2")
    body = c.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert body == part1 + part2


def test_presigned_range_and_public_reads(s3, production):
    svc, c = s3
    c.put_object(Bucket=BUCKET, Key="pub/firefox/releases/140.0/update/linux/de/firefox-140.0.complete.mar", Body=bytes(range(256)))
    key = "pub/firefox/releases/140.0/update/linux/de/firefox-140.0.complete.mar"
    url = c.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=300)
    r = requests.get(url)
    assert r.status_code == 200 and r.content == bytes(range(256))
    part = c.get_object(Bucket=BUCKET, Key=key, Range="bytes=10-19")
    assert part["ContentRange"] == "bytes 10-19/256"
    assert part["Body"].read() == bytes(range(10, 20))
    # Unsigned reads (the updater): whole and ranged.
    r = requests.get(f"{svc.url}/{BUCKET}/{key}", headers={"Range": "bytes=250-"})
    assert r.status_code == 206 and r.headers["Content-Range"] == "bytes 250-255/256"
    assert r.content == bytes(range(250, 256))
    # A missing key comes from production; a present one does not.
    r = requests.get(f"{svc.url}/{BUCKET}/pub/firefox/releases/139.0/SHA512SUMS")
    assert r.text == "production:/pub/firefox/releases/139.0/SHA512SUMS"
    assert r.history and r.history[0].status_code == 307
    r = requests.get(f"{svc.url}/{BUCKET}/{key}", allow_redirects=False)
    assert r.status_code == 200


def test_bad_credentials_and_unsigned_writes_change_nothing(s3):
    svc, _ = s3
    bad = boto3.client("s3", endpoint_url=svc.url, aws_access_key_id=svc.user, aws_secret_access_key="wrong",
                       region_name="us-east-1", config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as e:
        bad.put_object(Bucket=BUCKET, Key="evil", Body=b"x")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    r = requests.put(f"{svc.url}/{BUCKET}/evil", data=b"x")
    assert r.status_code == 403
    r = requests.get(f"{svc.url}/{BUCKET}/evil", allow_redirects=False)
    assert r.status_code == 307, "still missing, so it points at production"
