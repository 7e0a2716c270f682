from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from menda.testing import FakeCodeArtifact, build_wheel
from menda.testing.codeartifact import Repository

DOMAIN, OWNER, REGION, REPO = "menda-private", "058264169513", "eu-west-1", "plugins"
HOST = f"{DOMAIN}-{OWNER}.d.codeartifact.{REGION}.amazonaws.com"
GOOD = "caat_good-token"


class FixedTokenValidator:
    """Accepts one token, for one domain/owner/region; records what it was asked."""

    def __init__(self, token: str = GOOD, realm: tuple[str, str, str] = (DOMAIN, OWNER, REGION)):
        self.token = token
        self.realm = realm
        self.calls: list[tuple[str, str, str]] = []

    def validate_registry_token(self, token: str, *, domain: str, owner: str, region: str) -> bool:
        self.calls.append((domain, owner, region))
        return token == self.token and (domain, owner, region) == self.realm


class ExplodingValidator:
    def validate_registry_token(self, token: str, *, domain: str, owner: str, region: str) -> bool:
        raise RuntimeError("validator is down")


@pytest.fixture
def validator() -> FixedTokenValidator:
    return FixedTokenValidator()


@pytest.fixture
def ca(validator: FixedTokenValidator) -> Iterator[FakeCodeArtifact]:
    with FakeCodeArtifact(validator) as server:
        yield server


@pytest.fixture
def index_url(ca: FakeCodeArtifact) -> str:
    return ca.add_repository(DOMAIN, OWNER, REGION, REPO)


@pytest.fixture
def session(ca: FakeCodeArtifact) -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.trust_env = False
        s.proxies = {"https": ca.proxy_url, "http": ca.proxy_url}
        s.verify = str(ca.ca_pem_path)
        yield s


def test_add_repository_returns_the_genuine_index_url(index_url: str) -> None:
    assert index_url == f"https://{HOST}/pypi/{REPO}/simple/"


def test_simple_index_and_project_page_are_served_with_a_valid_token(
    ca: FakeCodeArtifact, index_url: str, session: requests.Session
) -> None:
    ca.add_package(index_url, "Hello_World", "1.0", dependencies=["dep>=1"])

    index = session.get(index_url, auth=("aws", GOOD))
    assert index.status_code == 200
    assert index.headers["Content-Type"].startswith("text/html")
    assert f'href="/pypi/{REPO}/simple/hello-world/"' in index.text

    page = session.get(index_url + "hello-world/", auth=("aws", GOOD))
    assert page.status_code == 200
    assert "hello_world-1.0-py3-none-any.whl#sha256=" in page.text


def test_links_carry_the_file_sha256_and_escaped_requires_python(
    ca: FakeCodeArtifact, index_url: str, session: requests.Session
) -> None:
    wheel = ca.add_package(index_url, "pkg", "1.0", requires_python=">=3.8")
    page = session.get(index_url + "pkg/", auth=("aws", GOOD)).text
    match = re.search(r'href="([^"]+)#sha256=([0-9a-f]{64})" data-requires-python="&gt;=3.8"', page)
    assert match is not None, page
    assert match.group(2) == hashlib.sha256(wheel.read_bytes()).hexdigest()

    download = session.get(f"https://{HOST}{match.group(1)}", auth=("aws", GOOD))
    assert download.status_code == 200
    assert download.content == wheel.read_bytes()


def test_missing_authorization_gets_401_with_the_realm(
    index_url: str, session: requests.Session, ca: FakeCodeArtifact
) -> None:
    response = session.get(index_url)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == f'Basic realm="{DOMAIN}-{OWNER}"'
    assert ca.requests.count(status=401, auth_presented=False, host=HOST) == 1


@pytest.mark.parametrize(
    "auth",
    [("aws", "wrong"), ("someone", GOOD), ("aws", "")],
    ids=["bad-token", "not-aws-username", "empty-token"],
)
def test_bad_credentials_get_401_with_the_realm(
    index_url: str, session: requests.Session, ca: FakeCodeArtifact, auth: tuple[str, str]
) -> None:
    response = session.get(index_url, auth=auth)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == f'Basic realm="{DOMAIN}-{OWNER}"'
    [record] = ca.requests.records(status=401)
    assert record.auth_presented
    assert not record.auth_valid


def test_malformed_authorization_header_gets_401(index_url: str, session: requests.Session) -> None:
    for header in ("Basic !!!not-base64", "Bearer " + GOOD, "Basic"):
        response = session.get(index_url, headers={"Authorization": header})
        assert response.status_code == 401, header


def test_token_is_checked_against_the_host_realm(
    ca: FakeCodeArtifact, session: requests.Session, validator: FixedTokenValidator
) -> None:
    other = ca.add_repository("other", "111122223333", "us-east-1", "r")
    assert session.get(other, auth=("aws", GOOD)).status_code == 401
    assert validator.calls[-1] == ("other", "111122223333", "us-east-1")


def test_a_validator_that_raises_means_401(session: requests.Session) -> None:
    with FakeCodeArtifact(ExplodingValidator()) as server:
        url = server.add_repository(DOMAIN, OWNER, REGION, REPO)
        response = session.get(
            url,
            auth=("aws", GOOD),
            proxies={"https": server.proxy_url},
            verify=str(server.ca_pem_path),
        )
    assert response.status_code == 401


def test_non_normalized_project_names_redirect_to_the_normalized_page(
    ca: FakeCodeArtifact, index_url: str, session: requests.Session
) -> None:
    ca.add_package(index_url, "My.Pkg", "1.0")
    response = session.get(index_url + "My_Pkg/", auth=("aws", GOOD), allow_redirects=False)
    assert response.status_code == 301
    assert response.headers["Location"] == f"/pypi/{REPO}/simple/my-pkg/"
    followed = session.get(index_url + "My_Pkg", auth=("aws", GOOD))
    assert followed.status_code == 200
    assert followed.url == index_url + "my-pkg/"


def test_unknown_project_repository_and_file_are_404_after_auth(
    ca: FakeCodeArtifact, index_url: str, session: requests.Session
) -> None:
    ca.add_package(index_url, "pkg", "1.0")
    other_repo = f"https://{HOST}/pypi/nope/simple/"
    assert session.get(other_repo).status_code == 401
    assert session.get(other_repo, auth=("aws", GOOD)).status_code == 404
    assert session.get(index_url + "absent/", auth=("aws", GOOD)).status_code == 404
    missing = index_url + "pkg/1.0/pkg-9.9-py3-none-any.whl"
    assert session.get(missing, auth=("aws", GOOD)).status_code == 404
    assert session.get(f"https://{HOST}/elsewhere", auth=("aws", GOOD)).status_code == 404


def test_add_package_to_an_unknown_repository_fails(ca: FakeCodeArtifact) -> None:
    with pytest.raises(KeyError):
        ca.add_package(f"https://{HOST}/pypi/{REPO}/simple/", "pkg", "1.0")
    with pytest.raises(ValueError, match="index URL"):
        ca.add_package("https://example.com/simple/", "pkg", "1.0")


def test_repository_handle_is_accepted_like_an_index_url(
    ca: FakeCodeArtifact, index_url: str
) -> None:
    repository = ca.repository(index_url)
    assert repository == Repository(DOMAIN, OWNER, REGION, REPO)
    assert repository.upload_url == f"https://{HOST}/pypi/{REPO}/"
    ca.add_package(repository, "pkg", "1.0")
    assert ca.files(index_url) == ["pkg-1.0-py3-none-any.whl"]


def _upload(
    session: requests.Session,
    url: str,
    wheel: Path,
    *,
    auth: tuple[str, str] | None = ("aws", GOOD),
    digest: str | None = None,
    name: str = "uploaded",
    version: str = "0.5",
) -> requests.Response:
    data = wheel.read_bytes()
    fields = {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": name,
        "version": version,
        "filetype": "bdist_wheel",
        "pyversion": "py3",
        "metadata_version": "2.1",
        "sha256_digest": digest or hashlib.sha256(data).hexdigest(),
    }
    files = {"content": (wheel.name, data, "application/octet-stream")}
    return session.post(url, data=fields, files=files, auth=auth)


def test_upload_then_download_returns_the_same_bytes(
    ca: FakeCodeArtifact, index_url: str, session: requests.Session, tmp_path: Path
) -> None:
    # CR, LF and CRLF bytes inside the file must survive the multipart parser.
    wheel = build_wheel(
        tmp_path, "uploaded", "0.5", modules={"uploaded/__init__.py": "x = 1\r\n\r\r\n\n"}
    )
    upload_url = ca.repository(index_url).upload_url

    response = _upload(session, upload_url, wheel)
    assert response.status_code == 200, response.text

    assert ca.files(index_url, "uploaded") == [wheel.name]
    page = session.get(index_url + "uploaded/", auth=("aws", GOOD)).text
    href = re.search(r'href="([^"#]+)#sha256=([0-9a-f]+)"', page)
    assert href is not None
    assert href.group(2) == hashlib.sha256(wheel.read_bytes()).hexdigest()
    download = session.get(f"https://{HOST}{href.group(1)}", auth=("aws", GOOD))
    assert download.content == wheel.read_bytes()


def test_upload_without_valid_token_is_refused_and_not_stored(
    ca: FakeCodeArtifact, index_url: str, session: requests.Session, tmp_path: Path
) -> None:
    wheel = build_wheel(tmp_path, "uploaded", "0.5")
    upload_url = ca.repository(index_url).upload_url
    assert _upload(session, upload_url, wheel, auth=None).status_code == 401
    assert _upload(session, upload_url, wheel, auth=("aws", "bad")).status_code == 401
    assert ca.files(index_url) == []


def test_upload_of_an_existing_file_conflicts(
    ca: FakeCodeArtifact, index_url: str, session: requests.Session, tmp_path: Path
) -> None:
    wheel = build_wheel(tmp_path, "uploaded", "0.5")
    upload_url = ca.repository(index_url).upload_url
    assert _upload(session, upload_url, wheel).status_code == 200
    assert _upload(session, upload_url, wheel).status_code == 409


def test_upload_with_a_wrong_digest_or_bad_form_is_400(
    ca: FakeCodeArtifact, index_url: str, session: requests.Session, tmp_path: Path
) -> None:
    wheel = build_wheel(tmp_path, "uploaded", "0.5")
    upload_url = ca.repository(index_url).upload_url
    assert _upload(session, upload_url, wheel, digest="0" * 64).status_code == 400
    assert _upload(session, upload_url, wheel, name="").status_code == 400
    not_form = session.post(upload_url, data=b"{}", auth=("aws", GOOD))
    assert not_form.status_code == 400
    assert session.get(upload_url, auth=("aws", GOOD)).status_code == 405
    assert ca.files(index_url) == []


def test_public_index_needs_no_authentication(ca: FakeCodeArtifact) -> None:
    wheel = ca.add_public_package("Public_Dep", "3.0")
    with requests.Session() as direct:
        direct.trust_env = False
        page = direct.get(ca.public_index_url + "public-dep/")
        assert page.status_code == 200
        href = re.search(r'href="([^"#]+)#sha256=', page.text)
        assert href is not None
        download = direct.get(f"http://127.0.0.1:{ca.port}{href.group(1)}")
    assert download.content == wheel.read_bytes()
    assert ca.requests.count(path_prefix="/public/", status=200) == 2


def test_request_log_never_holds_the_token(
    ca: FakeCodeArtifact, index_url: str, session: requests.Session
) -> None:
    session.get(index_url, auth=("aws", GOOD))
    session.get(index_url, auth=("aws", "wrong-secret"))
    text = repr(list(ca.requests))
    assert GOOD not in text
    assert "wrong-secret" not in text
    assert ca.requests.statuses(host=HOST, method="GET") == [200, 401]
    assert ca.requests.count(method="CONNECT") == 1  # one tunnel, kept alive


def test_request_log_rejects_unknown_fields(ca: FakeCodeArtifact) -> None:
    with pytest.raises(TypeError, match="unknown"):
        ca.requests.count(colour="blue")


def test_installer_env_points_installers_at_the_proxy_and_ca(ca: FakeCodeArtifact) -> None:
    env = ca.installer_env({"PATH": "/bin", "ALL_PROXY": "http://elsewhere:1"})
    ca_path = str(ca.ca_pem_path)
    assert env["PATH"] == "/bin"
    assert "ALL_PROXY" not in env
    assert env["HTTPS_PROXY"] == env["https_proxy"] == ca.proxy_url
    assert env["SSL_CERT_FILE"] == env["PIP_CERT"] == env["REQUESTS_CA_BUNDLE"] == ca_path
    assert env["NO_PROXY"] == env["no_proxy"] == "127.0.0.1,localhost"
    assert Path(ca_path).read_text().startswith("-----BEGIN CERTIFICATE-----")


def test_packages_can_be_added_before_start_and_files_go_at_stop(
    validator: FixedTokenValidator,
) -> None:
    server = FakeCodeArtifact(validator)
    url = server.add_repository(DOMAIN, OWNER, REGION, REPO)
    wheel = server.add_package(url, "early", "1.0")
    with server:
        with requests.Session() as s:
            s.trust_env = False
            response = s.get(
                url + "early/",
                auth=("aws", GOOD),
                proxies={"https": server.proxy_url},
                verify=str(server.ca_pem_path),
            )
        assert response.status_code == 200
    assert not wheel.exists()


def test_upload_accepts_local_versions(
    ca: FakeCodeArtifact, index_url: str, session: requests.Session, tmp_path: Path
) -> None:
    wheel = build_wheel(tmp_path, "uploaded", "0.5+build.7")
    upload_url = ca.repository(index_url).upload_url
    response = _upload(session, upload_url, wheel, version="0.5+build.7")
    assert response.status_code == 200, response.text
    assert ca.files(index_url, "uploaded") == ["uploaded-0.5+build.7-py3-none-any.whl"]
    assert ca.count(method="POST", status=200) == 1


def test_head_requests_get_headers_without_a_body(
    ca: FakeCodeArtifact, index_url: str, session: requests.Session
) -> None:
    wheel = ca.add_package(index_url, "pkg", "1.0")
    url = index_url + f"pkg/1.0/{wheel.name}"
    response = session.head(url, auth=("aws", GOOD))
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == wheel.stat().st_size
    assert response.content == b""
    assert session.get(url, auth=("aws", GOOD)).content == wheel.read_bytes()


def test_parallel_clients_are_all_served(ca: FakeCodeArtifact, index_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    ca.add_package(index_url, "pkg", "1.0")

    def fetch(_: int) -> int:
        with requests.Session() as s:
            s.trust_env = False
            return s.get(
                index_url + "pkg/",
                auth=("aws", GOOD),
                proxies={"https": ca.proxy_url},
                verify=str(ca.ca_pem_path),
                timeout=30,
            ).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(fetch, range(16))) == [200] * 16
    assert ca.count(method="CONNECT", status=200) == 16


def test_chunked_upload_bodies_are_accepted(
    ca: FakeCodeArtifact, index_url: str, session: requests.Session, tmp_path: Path
) -> None:
    from urllib3 import encode_multipart_formdata

    wheel = build_wheel(tmp_path, "chunky", "1.0")
    body, content_type = encode_multipart_formdata(
        {
            ":action": "file_upload",
            "name": "chunky",
            "version": "1.0",
            "content": (wheel.name, wheel.read_bytes(), "application/octet-stream"),
        }
    )
    pieces = iter([body[:100], body[100:1000], body[1000:]])  # a generator: chunked encoding
    response = session.post(
        ca.repository(index_url).upload_url,
        data=pieces,
        headers={"Content-Type": content_type},
        auth=("aws", GOOD),
    )
    assert response.status_code == 200, response.text
    assert ca.files(index_url, "chunky") == [wheel.name]


def test_the_fake_codeartifact_fixture_checks_tokens_with_the_menda_cloud_fixture(
    fake_codeartifact: FakeCodeArtifact, menda_cloud: Any
) -> None:
    menda_cloud.add_m2m_client("ci-bot", "s3cret")
    minted = menda_cloud.mint_registry_token("ci-bot", domain=DOMAIN, owner=OWNER, region=REGION)
    url = fake_codeartifact.add_repository(DOMAIN, OWNER, REGION, REPO)
    fake_codeartifact.add_package(url, "pkg", "1.0")
    with requests.Session() as s:
        s.trust_env = False
        s.proxies = {"https": fake_codeartifact.proxy_url}
        s.verify = str(fake_codeartifact.ca_pem_path)
        assert s.get(url + "pkg/", auth=("aws", minted.token)).status_code == 200
        assert s.get(url + "pkg/", auth=("aws", GOOD)).status_code == 401
