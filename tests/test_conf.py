import pytest

from mailqueue.conf import override_settings, settings
from mailqueue.exceptions import ImproperlyConfigured


def test_default_is_djangos():
    assert settings.EMAIL_PORT == 25
    assert settings.EMAIL_BACKEND == "mailqueue.backends.smtp.EmailBackend"


def test_environment_variable_is_parsed_to_the_defaults_type(monkeypatch):
    monkeypatch.setenv("EMAIL_PORT", "2525")
    monkeypatch.setenv("EMAIL_USE_TLS", "yes")
    monkeypatch.setenv("ADMINS", "a@example.com, b@example.com")
    monkeypatch.setenv("EMAIL_TIMEOUT", "2.5")
    assert settings.EMAIL_PORT == 2525
    assert settings.EMAIL_USE_TLS is True
    assert settings.ADMINS == ["a@example.com", "b@example.com"]
    assert settings.EMAIL_TIMEOUT == 2.5


def test_list_setting_accepts_json(monkeypatch):
    monkeypatch.setenv("MANAGERS", '["m@example.com"]')
    assert settings.MANAGERS == ["m@example.com"]


def test_malformed_environment_variable_names_the_variable(monkeypatch):
    monkeypatch.setenv("EMAIL_PORT", "twenty-five")
    with pytest.raises(ImproperlyConfigured, match="EMAIL_PORT"):
        _ = settings.EMAIL_PORT


def test_malformed_boolean_names_the_variable(monkeypatch):
    monkeypatch.setenv("EMAIL_USE_SSL", "maybe")
    with pytest.raises(ImproperlyConfigured, match="EMAIL_USE_SSL"):
        _ = settings.EMAIL_USE_SSL


def test_settings_module_is_read_when_used(monkeypatch, tmp_path):
    (tmp_path / "mq_test_settings.py").write_text("EMAIL_HOST = 'smtp.example.com'\nlowercase = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("MAILQUEUE_SETTINGS", "mq_test_settings")
    assert settings.EMAIL_HOST == "smtp.example.com"


def test_environment_beats_settings_module(monkeypatch, tmp_path):
    (tmp_path / "mq_test_settings2.py").write_text("EMAIL_HOST = 'from-module'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("MAILQUEUE_SETTINGS", "mq_test_settings2")
    monkeypatch.setenv("EMAIL_HOST", "from-env")
    assert settings.EMAIL_HOST == "from-env"


def test_unimportable_settings_module_is_improperly_configured(monkeypatch):
    monkeypatch.setenv("MAILQUEUE_SETTINGS", "no_such_module_for_mailqueue")
    with pytest.raises(ImproperlyConfigured, match="MAILQUEUE_SETTINGS"):
        _ = settings.EMAIL_HOST


def test_override_settings_as_context_manager():
    with override_settings(EMAIL_HOST="override.example"):
        assert settings.EMAIL_HOST == "override.example"
    assert settings.EMAIL_HOST == "localhost"


def test_override_settings_as_decorator():
    @override_settings(EMAIL_PORT=1)
    def read() -> int:
        return settings.EMAIL_PORT

    assert read() == 1
    assert settings.EMAIL_PORT == 25


def test_override_beats_environment(monkeypatch):
    monkeypatch.setenv("EMAIL_PORT", "2525")
    with override_settings(EMAIL_PORT=587):
        assert settings.EMAIL_PORT == 587


def test_override_of_unknown_setting_is_refused():
    with pytest.raises(ImproperlyConfigured, match="EMAIL_PROT"):
        override_settings(EMAIL_PROT=1)


def test_unknown_setting_is_an_attribute_error():
    with pytest.raises(AttributeError, match="NOPE"):
        _ = settings.NOPE


def test_read_from_an_object_replaces_the_settings_module():
    class Source:
        EMAIL_HOST = "from-object"

    settings.read_from(Source)
    try:
        assert settings.EMAIL_HOST == "from-object"
        assert settings.EMAIL_PORT == 25
    finally:
        settings.read_from(None)
    assert settings.EMAIL_HOST == "localhost"
