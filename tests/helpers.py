"""Small builders shared by the tests."""

KEY = "test-key-123"


def hello(text="Hello"):
    return {"contents": [{"role": "user", "parts": [{"text": text}]}]}


def error_of(response):
    """The Gemini error of an HTTP response, checking the envelope on the way."""
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = response.json()
    assert list(body) == ["error"], body
    error = body["error"]
    assert error["code"] == response.status_code
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["status"], str) and error["status"].isupper()
    return error
