"""Recognition of keyring service names as CodeArtifact repository endpoints."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from menda.keyring._service import CodeArtifactService, parse_service

HOST = "my-domain-111122223333.d.codeartifact.eu-west-1.amazonaws.com"
VPCE = "vpce-0743fe535b883ffff-76ddffff.d.codeartifact.us-west-2.vpce.amazonaws.com"


def service(
    *,
    domain: str = "my-domain",
    owner: str = "111122223333",
    region: str = "eu-west-1",
    repository: str | None = None,
    format: str | None = None,
    endpoint: str = HOST,
) -> CodeArtifactService:
    return CodeArtifactService(
        domain=domain,
        domain_owner=owner,
        region=region,
        repository=repository,
        format=format,
        endpoint=endpoint,
    )


BARE = service()
PYPI = service(repository="my-repo", format="pypi")


ACCEPTED: list[tuple[str, CodeArtifactService]] = [
    # uv: the index URL as configured (trailing slash kept), then host, host:port, scheme://host
    (f"https://{HOST}/pypi/my-repo/simple/", PYPI),
    (f"https://{HOST}/pypi/my-repo/simple", PYPI),
    (HOST, BARE),
    (f"{HOST}:443", BARE),
    (f"https://{HOST}", BARE),
    (f"http://{HOST}:8080", BARE),
    (f"http://{HOST}/pypi/my-repo/simple/", PYPI),
    # uv with the username in the URL, when something passes the userinfo along
    (f"https://aws@{HOST}/pypi/my-repo/simple/", PYPI),
    (f"https://aws:@{HOST}/pypi/my-repo/simple/", PYPI),
    (f"https://a%40b:x@{HOST}/", BARE),
    # uv < 0.7: a package page, then the host
    (f"https://{HOST}/pypi/my-repo/simple/requests/", PYPI),
    # twine: the repository URL
    (f"https://{HOST}/pypi/my-repo/", PYPI),
    (f"https://{HOST}/pypi/my-repo", PYPI),
    # case-insensitive host and scheme, one trailing dot
    (f"HTTPS://{HOST.upper()}/pypi/my-repo/simple/", PYPI),
    (f"{HOST}.", BARE),
    (f"{HOST}.:8443", BARE),
    (f"https://{HOST}./pypi/my-repo/simple/", PYPI),
    # any port 1..65535
    (f"{HOST}:1", BARE),
    (f"{HOST}:65535", BARE),
    # other paths: recognised, but no repository
    (f"https://{HOST}/", BARE),
    (f"https://{HOST}/npm/my-repo/", service(repository="my-repo", format="npm")),
    (f"https://{HOST}/maven/my-repo/", service(repository="my-repo", format="maven")),
    (f"https://{HOST}/pypi/", BARE),
    (f"https://{HOST}/pypi//my-repo/", BARE),
    (f"https://{HOST}/pypi/r/simple/", BARE),  # one-letter names are not CodeArtifact names
    (f"https://{HOST}/PyPI/my-repo/", BARE),
    (f"https://{HOST}/other/thing", BARE),
    (f"https://{HOST}/pypi/my-repo/../../npm/other/", BARE),
    (f"https://{HOST}/pypi/my-repo/simple/?x=1#frag", PYPI),
    (f"https://{HOST}?x=1", BARE),
    (f"https://{HOST}#@evil.example/", BARE),  # a fragment: every URL parser agrees on the host
    # repository names keep their case
    (f"https://{HOST}/pypi/My_Repo.v2/simple/", service(repository="My_Repo.v2", format="pypi")),
    # the domain is split from the owner on the last hyphen
    (
        "https://a-1-222233334444-111122223333.d.codeartifact.eu-west-1.amazonaws.com/",
        service(
            domain="a-1-222233334444",
            endpoint="a-1-222233334444-111122223333.d.codeartifact.eu-west-1.amazonaws.com",
        ),
    ),
    (
        "ab-111122223333.d.codeartifact.eu-west-1.amazonaws.com",
        service(domain="ab", endpoint="ab-111122223333.d.codeartifact.eu-west-1.amazonaws.com"),
    ),
    # the example of the product page
    (
        "https://menda-private-058264169513.d.codeartifact.eu-west-1.amazonaws.com"
        "/pypi/menda-plugins/simple/",
        service(
            domain="menda-private",
            owner="058264169513",
            repository="menda-plugins",
            format="pypi",
            endpoint="menda-private-058264169513.d.codeartifact.eu-west-1.amazonaws.com",
        ),
    ),
    # VPC endpoint without private DNS: domain and owner from the path
    (
        f"https://{VPCE}/pypi/d/my-domain-111122223333/my-repo/simple/",
        service(region="us-west-2", repository="my-repo", format="pypi", endpoint=VPCE),
    ),
    (
        f"https://aws@{VPCE.upper()}.:443/pypi/d/my-domain-111122223333/my-repo/",
        service(region="us-west-2", repository="my-repo", format="pypi", endpoint=VPCE),
    ),
    (
        f"https://{VPCE}/pypi/d/my-domain-111122223333/",
        service(region="us-west-2", endpoint=VPCE),
    ),
]

REGIONS = [
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-2",
    "eu-south-1",
    "ap-southeast-4",
    "ap-northeast-3",
    "me-south-1",
    "me-central-1",
    "af-south-1",
    "sa-east-1",
    "ca-west-1",
    "il-central-1",
    "mx-central-1",
    "cn-north-1",
    "cn-northwest-1",
    "us-gov-west-1",
    "us-gov-east-1",
    "us-iso-east-1",
    "us-isob-east-1",
    "eu-isoe-west-1",
    "us-isof-south-1",
]


@pytest.mark.parametrize(("text", "expected"), ACCEPTED, ids=[a for a, _ in ACCEPTED])
def test_codeartifact_service_names_are_recognised_with_their_parts(
    text: str, expected: CodeArtifactService
) -> None:
    assert parse_service(text) == expected


@pytest.mark.parametrize("region", REGIONS)
def test_every_kind_of_aws_region_is_recognised(region: str) -> None:
    host = f"my-domain-111122223333.d.codeartifact.{region}.amazonaws.com"
    assert parse_service(f"https://{host}/pypi/my-repo/simple/") == service(
        region=region, repository="my-repo", format="pypi", endpoint=host
    )


REJECTED = [
    # nothing, or not a host at all
    "",
    " ",
    "\n",
    "https://",
    "https:///pypi/my-repo/",
    # other hosts and Poetry's probes
    "pypi.org",
    "https://pypi.org/simple/",
    "https://files.pythonhosted.org/",
    "poetry-repository-private",
    "python-poetry-check",
    "codeartifact.eu-west-1.amazonaws.com",
    "https://my-domain-111122223333.d.codeartifact.eu-west-1.amazonaws.com.evil.example/",
    # look-alike hosts: extra labels, wrong suffix, wrong shape
    f"{HOST}.evil.example",
    f"evil.{HOST}",
    f"https://evil.{HOST}/pypi/my-repo/",
    HOST.replace(".amazonaws.com", ".amazonaws.com.cn"),
    HOST.replace(".amazonaws.com", ".amazonaws.co"),
    HOST.replace(".amazonaws.com", ".amazonaws.com.evil"),
    HOST.replace(".amazonaws.com", ".amazonaws-com"),
    HOST.replace(".amazonaws.com", ".amaz0naws.com"),
    HOST.replace(".d.codeartifact", ".codeartifact"),
    HOST.replace(".d.codeartifact", ".d.codeartifacts"),
    HOST.replace(".d.codeartifact", "-d.codeartifact"),
    HOST.replace("eu-west-1", "eu-west"),
    HOST.replace("eu-west-1", "euwest1"),
    HOST.replace("eu-west-1", "eu-west-0"),
    HOST.replace("eu-west-1", "e-west-1"),
    HOST.replace("eu-west-1", "eu-west-1.evil"),
    HOST.replace("eu-west-1", "eu_west_1"),
    "codeartifact.eu-west-1.amazonaws.com/my-domain-111122223333.d.",
    # the owner: 12 ASCII digits
    HOST.replace("111122223333", "11112222333"),
    HOST.replace("111122223333", "1111222233334"),
    HOST.replace("111122223333", "11112222333x"),
    HOST.replace("-111122223333", "111122223333"),
    HOST.replace("-111122223333", "_111122223333"),
    HOST.replace("111122223333", "\uff11" * 4 + "\uff12" * 4 + "\uff13" * 4),
    HOST.replace("111122223333", "\u0661" * 4 + "\u0662" * 4 + "\u0663" * 4),
    # the domain: [a-z][a-z0-9-]{0,48}[a-z0-9], no punycode
    HOST.replace("my-domain", "1domain"),
    HOST.replace("my-domain", "my-domain-"),
    HOST.replace("my-domain", "my_domain"),
    HOST.replace("my-domain", "x"),
    HOST.replace("my-domain", "a" * 51),
    HOST.replace("my-domain", ""),
    HOST.replace("my-domain", "my.domain"),
    HOST.replace("my-domain", "xn--my-domain"),
    HOST.replace("my-domain", "XN--my-domain"),
    # Unicode look-alikes: full-width and ideographic dots, Cyrillic, long s, full-width letters
    HOST.replace(".", "\uff0e"),
    HOST.replace(".d.", "\uff0ed."),
    HOST.replace(".com", "\u3002com"),
    HOST.replace("amazonaws", "\u0430mazonaws"),
    HOST.replace("codeartifact", "\u0441odeartifact"),
    HOST.replace("amazonaws", "amazonaw\u017f"),
    HOST.replace("codeartifact", "codeart\u0131fact"),
    HOST.replace("codeartifact", "codeart\u0130fact"),
    HOST.replace("my-domain", "my-dom\u0430in"),
    HOST.replace("d.codeartifact", "\uff44.codeartifact"),
    HOST.replace("eu-west-1", "eu\u2010west-1"),
    f"https://{HOST}/pypi/my-repo/simple/\u00e9",
    # dots
    f"{HOST}..",
    f"https://{HOST}../",
    f".{HOST}",
    # whitespace and control characters anywhere
    f" {HOST}",
    f"{HOST} ",
    f"{HOST}\n",
    f"{HOST}\r\n",
    f"{HOST}\t",
    f"{HOST}\x00",
    f"\x00{HOST}",
    f"https://{HOST}/pypi/my repo/simple/",
    f"https://{HOST}/pypi/my-repo/simple/\n",
    f"https://{HOST}\x7f/",
    # ports
    f"{HOST}:",
    f"{HOST}:0",
    f"{HOST}:65536",
    f"{HOST}:99999",
    f"{HOST}:123456",
    f"{HOST}:https",
    f"{HOST}:-1",
    f"{HOST}:+443",
    f"https://{HOST}:443:443/",
    # the CodeArtifact host must be the host, not the userinfo, query, fragment or path
    f"https://{HOST}@evil.example/",
    f"https://{HOST}@evil.example/pypi/my-repo/simple/",
    f"https://aws@{HOST}@evil.example/",
    f"https://{HOST}:443@evil.example/",
    f"https://{HOST}%40evil.example/",
    f"https://evil.example\\@{HOST}/",
    f"https://evil.example/?h={HOST}",
    f"https://evil.example/#{HOST}",
    f"https://evil.example/{HOST}/",
    f"https://evil.example/?next=https://{HOST}/pypi/my-repo/",
    f"https://{HOST}\\@evil.example/",
    f"https://{HOST}\\evil.example/",
    # a path, userinfo or query on a bare host is not one of the forms installers send
    f"{HOST}/",
    f"{HOST}/pypi/my-repo/simple/",
    f"aws@{HOST}",
    f"{HOST}?x",
    # schemes other than http and https, malformed schemes
    f"ftp://{HOST}/",
    f"file://{HOST}/",
    f"git+https://{HOST}/",
    f"//{HOST}/",
    f"https:/{HOST}/",
    f"https:{HOST}",
    f"https//{HOST}/",
    # malformed percent-escapes
    f"https://{HOST}/pypi/my-repo/%zz/",
    f"https://{HOST}/pypi/my-repo/%4/",
    # VPC endpoints need the domain and owner in the path
    VPCE,
    f"https://{VPCE}/",
    f"https://{VPCE}/pypi/my-repo/simple/",
    f"https://{VPCE}/pypi/d/my-repo/simple/",
    f"https://{VPCE}/pypi/x/my-domain-111122223333/my-repo/",
    f"https://{VPCE}/PyPI/d/my-domain-111122223333/my-repo/",
    f"https://{VPCE}/other/d/my-domain-111122223333/my-repo/",
    f"https://{VPCE}/pypi/d/My-Domain-111122223333/my-repo/",
    f"https://{VPCE}/pypi/d/my-domain-11112222333/my-repo/",
    f"https://{VPCE}/pypi/d/my_domain-111122223333/my-repo/",
    f"https://{VPCE}/pypi/d/xn--my-domain-111122223333/my-repo/",
    f"https://{VPCE}/pypi/d/my-domain-111122223333/../../d/other-222233334444/r/",
    f"https://{VPCE}/pypi/d/my-domain-111122223333/my-repo/./",
    f"https://{VPCE}?/pypi/d/my-domain-111122223333/my-repo/",
    f"https://{VPCE}#/pypi/d/my-domain-111122223333/my-repo/",
    f"https://{VPCE.replace('.vpce.amazonaws.com', '.vpce.amazonaws.com.evil')}"
    "/pypi/d/my-domain-111122223333/my-repo/",
    f"https://{VPCE.replace('vpce-', 'vpce_')}/pypi/d/my-domain-111122223333/my-repo/",
    "https://evil.example/pypi/d/my-domain-111122223333/my-repo/",
    # absurdly long input
    f"https://{HOST}/pypi/my-repo/" + "a" * 2048,
    HOST + "." * 10_000,
]


@pytest.mark.parametrize("text", REJECTED, ids=[ascii(r)[:120] for r in REJECTED])
def test_other_service_names_are_not_recognised(text: str) -> None:
    assert parse_service(text) is None


@pytest.mark.parametrize("value", [None, b"", 42, HOST.encode()])
def test_non_string_input_is_not_recognised_and_does_not_raise(value: object) -> None:
    assert parse_service(value) is None  # type: ignore[arg-type]


def test_the_length_cap_sits_at_2048_characters() -> None:
    base = f"https://{HOST}/pypi/my-repo/simple/"
    padded = base + "x" * (2048 - len(base))
    assert parse_service(padded) == PYPI
    assert parse_service(padded + "x") is None


def test_the_result_is_a_frozen_value() -> None:
    result = parse_service(HOST)
    assert result is not None
    with pytest.raises(AttributeError):
        result.domain = "other"  # type: ignore[misc]
    assert result == parse_service(HOST.upper())
    assert hash(result) == hash(parse_service(f"{HOST}:443"))


# --- properties -------------------------------------------------------------

domains = st.from_regex(r"[a-z][a-z0-9-]{0,48}[a-z0-9]", fullmatch=True).filter(
    lambda d: not d.startswith("xn--")
)
owners = st.from_regex(r"[0-9]{12}", fullmatch=True)
regions = st.one_of(
    st.sampled_from(REGIONS),
    st.from_regex(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]{2,16}-[1-9][0-9]?", fullmatch=True),
)
repositories = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{1,99}", fullmatch=True)
packages = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True)
formats = st.sampled_from(["pypi", "npm", "maven", "nuget", "swift", "ruby", "generic", "cargo"])
userinfos = st.sampled_from(["", "aws@", "aws:@", "aws:x@", "%61ws@", "user:p%40ss@"])


@st.composite
def random_case(draw: st.DrawFn, text: str) -> str:
    mask = draw(st.integers(0, 2 ** len(text) - 1))
    return "".join(c.upper() if mask >> i & 1 else c for i, c in enumerate(text))


@dataclass(frozen=True)
class Generated:
    text: str
    expected: CodeArtifactService


@st.composite
def valid_services(draw: st.DrawFn) -> Generated:
    domain, owner, region = draw(domains), draw(owners), draw(regions)
    endpoint = f"{domain}-{owner}.d.codeartifact.{region}.amazonaws.com"
    host = draw(random_case(endpoint)) + draw(st.sampled_from(["", "."]))
    port = draw(st.none() | st.integers(1, 65535))
    authority = host if port is None else f"{host}:{port}"
    scheme = draw(st.sampled_from([None, "https", "http", "HTTPS", "Http"]))
    repository: str | None = None
    repo_format: str | None = None
    if scheme is None:
        text = authority
    else:
        path = draw(
            st.sampled_from(
                [
                    "",
                    "/",
                    "/pypi/{r}",
                    "/pypi/{r}/",
                    "/pypi/{r}/simple/",
                    "/pypi/{r}/simple/{p}/",
                    "/{f}/{r}/",
                    "/unknown/{r}/",
                ]
            )
        )
        repo = draw(repositories)
        fmt = draw(formats)
        if "{r}" in path and not path.startswith("/unknown"):
            repository = repo
            repo_format = "pypi" if path.startswith("/pypi") else fmt
        path = path.format(r=repo, p=draw(packages), f=fmt)
        text = f"{scheme}://{draw(userinfos)}{authority}{path}"
    expected = CodeArtifactService(
        domain=domain,
        domain_owner=owner,
        region=region,
        repository=repository,
        format=repo_format,
        endpoint=endpoint,
    )
    return Generated(text, expected)


@given(st.text())
@settings(max_examples=1000, deadline=None)
def test_arbitrary_text_never_raises(text: str) -> None:
    result = parse_service(text)
    assert result is None or isinstance(result, CodeArtifactService)


@given(valid_services())
@settings(max_examples=500, deadline=None)
def test_generated_codeartifact_endpoints_are_recognised_with_the_right_parts(
    case: Generated,
) -> None:
    assert parse_service(case.text) == case.expected


@st.composite
def vpce_services(draw: st.DrawFn) -> Generated:
    domain, owner, region = draw(domains), draw(owners), draw(regions)
    vpce_id = draw(st.from_regex(r"vpce-[0-9a-f]{8,17}-[0-9a-z]{8}", fullmatch=True))
    endpoint = f"{vpce_id}.d.codeartifact.{region}.vpce.amazonaws.com"
    host = draw(random_case(endpoint)) + draw(st.sampled_from(["", "."]))
    port = draw(st.sampled_from(["", ":443", ":8443"]))
    fmt, repo = draw(formats), draw(repositories)
    tail = draw(st.sampled_from(["", "/", "/simple/", "/simple/pkg/"]))
    text = f"{draw(st.sampled_from(['https', 'http']))}://{host}{port}/{fmt}/d/{domain}-{owner}/{repo}{tail}"
    expected = CodeArtifactService(
        domain=domain,
        domain_owner=owner,
        region=region,
        repository=repo,
        format=fmt,
        endpoint=endpoint,
    )
    return Generated(text, expected)


@given(vpce_services())
@settings(max_examples=200, deadline=None)
def test_generated_vpc_endpoint_urls_are_recognised_with_the_path_domain(
    case: Generated,
) -> None:
    assert parse_service(case.text) == case.expected


LOOKALIKES = {
    ".": ["\uff0e", "\u3002", "\uff61", "\u2024", ","],
    "a": ["\u0430", "\uff41", "\u00e0", "\u0251"],
    "c": ["\u0441", "\u03f2", "\uff43"],
    "d": ["\u0501", "\uff44"],
    "e": ["\u0435", "\uff45"],
    "i": ["\u0456", "\u0131", "\u0130"],
    "m": ["\u043c", "\uff4d"],
    "n": ["\u0578", "\uff4e"],
    "o": ["\u043e", "\u03bf", "0"],
    "r": ["\u0433", "\uff52"],
    "s": ["\u0455", "\u017f", "\uff53"],
    "t": ["\u0442", "\uff54"],
    "w": ["\u0461", "\uff57"],
    "z": ["\u1d22", "\uff5a"],
    "1": ["\u0661", "\uff11", "l"],
    "-": ["\u2010", "\u2011", "\u2212", "_"],
}


@st.composite
def near_misses(draw: st.DrawFn) -> str:
    domain, owner, region = draw(domains), draw(owners), draw(regions)
    host = f"{domain}-{owner}.d.codeartifact.{region}.amazonaws.com"
    kind = draw(
        st.sampled_from(
            [
                "label-prefix",
                "label-suffix",
                "suffix",
                "owner-length",
                "domain",
                "userinfo",
                "query",
                "fragment",
                "path",
                "lookalike",
                "dots",
                "whitespace",
                "port",
            ]
        )
    )
    label = draw(st.from_regex(r"[a-z0-9][a-z0-9-]{0,10}", fullmatch=True))
    if kind == "label-prefix":
        host = f"{label}.{host}"
    elif kind == "label-suffix":
        host = f"{host}.{label}"
    elif kind == "suffix":
        wrong = draw(
            st.sampled_from(
                [
                    "amazonaws.com.cn",
                    "amazonaws.co",
                    "amazonaws.net",
                    "amazonaws.com.evil.example",
                    "amazon.com",
                    "amazonaws",
                    "aws",
                    "on.aws",
                    "amazonaws.comm",
                ]
            )
        )
        host = host.replace("amazonaws.com", wrong)
    elif kind == "owner-length":
        digits = draw(st.sampled_from([0, 1, 11, 13, 24]))
        host = host.replace(f"-{owner}.", "-" + (owner * 2)[:digits] + ".")
    elif kind == "domain":
        bad = draw(
            st.sampled_from(
                [
                    draw(st.sampled_from("0123456789")) + domain,
                    domain + "-",
                    domain + "_x",
                    "_" + domain,
                    domain.replace(domain[0], "_", 1),
                    "a" * 51,
                    domain[0],
                    "xn--" + domain,
                    domain + ".x",
                ]
            )
        )
        host = host.replace(f"{domain}-{owner}", f"{bad}-{owner}", 1)
    elif kind == "userinfo":
        return f"https://{host}{draw(st.sampled_from(['', ':443', '.']))}@evil.example/pypi/r/"
    elif kind == "query":
        return f"https://evil.example/?{draw(st.sampled_from(['', 'h=', 'url=https://']))}{host}"
    elif kind == "fragment":
        return f"https://evil.example/#{host}"
    elif kind == "path":
        return f"https://evil.example/{host}/pypi/repo/simple/"
    elif kind == "lookalike":
        positions = [i for i, c in enumerate(host) if c in LOOKALIKES]
        i = draw(st.sampled_from(positions))
        host = host[:i] + draw(st.sampled_from(LOOKALIKES[host[i]])) + host[i + 1 :]
        # "0" for "o" or "l" for "1" inside the domain gives another valid domain
        if host[i] in "0l":
            return "not a codeartifact host"
    elif kind == "dots":
        host = host + draw(st.sampled_from(["..", "...", "../", ". "]))
    elif kind == "whitespace":
        c = draw(
            st.sampled_from([" ", "\t", "\n", "\r", "\x00", "\x0b", "\x0c", "\u00a0", "\u2028"])
        )
        i = draw(st.integers(0, len(host)))
        host = host[:i] + c + host[i:]
    elif kind == "port":
        host += ":" + draw(
            st.sampled_from(["", "0", "65536", "99999", "100000", "x", "44 3", "-1"])
        )
    scheme = draw(st.sampled_from(["", "https://", "http://"]))
    return (
        f"{scheme}{host}{draw(st.sampled_from(['', '/pypi/my-repo/simple/']))}" if scheme else host
    )


@given(near_misses())
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_generated_near_misses_are_not_recognised(text: str) -> None:
    assert parse_service(text) is None


URL_NOISE = st.one_of(
    st.just(""),
    st.sampled_from(["aws@", "@", ":443", ":0", "/", ".", "..", "#", "?", "\\", "@evil.example"]),
    st.text(alphabet="aws@:/?#.%\\-_ 0123456789xX\t\uff0e", max_size=12),
)


@given(
    st.sampled_from(["https://", "http://", "HTTPS://"]),
    URL_NOISE,
    st.sampled_from([HOST, HOST.upper(), VPCE]),
    URL_NOISE,
    st.sampled_from(["", "/pypi/d/my-domain-111122223333/my-repo/"]),
)
@settings(max_examples=1000, deadline=None)
def test_a_recognised_url_has_the_codeartifact_host_where_a_url_parser_finds_it(
    scheme: str, before: str, host: str, after: str, vpce_path: str
) -> None:
    text = f"{scheme}{before}{host}{after}{vpce_path if host == VPCE else ''}"
    result = parse_service(text)
    event("recognised" if result else "not recognised")
    if result is None:
        return
    parts = urlsplit(text)
    assert parts.hostname is not None
    assert parts.hostname.removesuffix(".") == result.endpoint
    assert parts.port is None or 1 <= parts.port <= 65535
