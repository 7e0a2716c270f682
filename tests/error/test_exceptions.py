from __future__ import annotations

import pickle

import pytest

from menda.error import exceptions as exc

ALL = [
    exc.MendaError,
    exc.MendaConfigError,
    exc.ConfigFileNotFoundError,
    exc.ProfileNotFoundError,
    exc.MissingHostError,
    exc.MissingM2MCredentialsError,
    exc.InvalidConfigError,
    exc.MendaAuthError,
    exc.NoCachedLoginError,
    exc.MendaCloudAPIError,
]

HIERARCHY = {
    exc.MendaConfigError: exc.MendaError,
    exc.ConfigFileNotFoundError: exc.MendaConfigError,
    exc.ProfileNotFoundError: exc.MendaConfigError,
    exc.MissingHostError: exc.MendaConfigError,
    exc.MissingM2MCredentialsError: exc.MendaConfigError,
    exc.InvalidConfigError: exc.MendaConfigError,
    exc.MendaAuthError: exc.MendaError,
    exc.NoCachedLoginError: exc.MendaAuthError,
    exc.MendaCloudAPIError: exc.MendaError,
}


@pytest.mark.parametrize(("cls", "parent"), HIERARCHY.items())
def test_hierarchy_matches_the_spec(cls: type[Exception], parent: type[Exception]) -> None:
    assert cls.__bases__ == (parent,)


def test_everything_is_exported_from_both_modules() -> None:
    import menda.error

    assert sorted(exc.__all__) == sorted(c.__name__ for c in ALL)
    assert sorted(menda.error.__all__) == sorted(exc.__all__)


@pytest.mark.parametrize("cls", [c for c in ALL if c is not exc.MendaCloudAPIError])
def test_exceptions_pickle_and_keep_their_message(cls: type[exc.MendaError]) -> None:
    err = cls("Profile 'dev' has no host in /home/u/.menda/mendacfg")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls
    assert str(back) == str(err) == err.message


def test_cloud_api_error_carries_status_error_and_request_id_through_pickle() -> None:
    err = exc.MendaCloudAPIError(
        "POST /api/v1/auth/registry/token on https://h answered 403 access_denied",
        status_code=403,
        error="access_denied",
        request_id="req-1",
    )
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is exc.MendaCloudAPIError
    assert (back.status_code, back.error, back.request_id) == (403, "access_denied", "req-1")
    assert str(back) == str(err)
    assert "status_code=403" in repr(back)


def test_cloud_api_error_for_a_connection_failure_has_no_status() -> None:
    err = exc.MendaCloudAPIError("could not connect")
    assert err.status_code is None
    assert err.error is None
    assert err.request_id is None
