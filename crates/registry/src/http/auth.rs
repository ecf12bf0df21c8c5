//! HTTP basic authentication with the cluster's users (`--schema-registry-basic-auth`): the
//! same users SASL clients log in as (`skiff user add`), checked against their SCRAM
//! credentials, so the registry needs no user list of its own. Every route requires it, as
//! Confluent's registry does with `authentication.method=BASIC`.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use skiff_auth::Users;

/// Lets the request through when its `Authorization: Basic` names a user and its password,
/// as that user's principal (`User:<name>`, for the ACLs); answers 401 with a
/// `WWW-Authenticate` challenge otherwise.
pub(super) async fn require_user(
    State(users): State<Users>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some((user, password)) = credentials(request.headers()) else {
        return unauthorized();
    };
    match users.get(&user).await {
        Ok(Some(stored)) => {
            // PBKDF2: a millisecond of CPU, off the async workers.
            let matches =
                tokio::task::spawn_blocking(move || stored.matches_password(&password)).await;
            if matches.unwrap_or(false) {
                request.extensions_mut().insert(skiff_auth::Principal::user(user));
                return next.run(request).await;
            }
        }
        Ok(None) => {}
        Err(error) => {
            tracing::warn!(%error, "schema registry: the users cannot be read");
            return super::error(
                StatusCode::SERVICE_UNAVAILABLE,
                50003,
                "the user store cannot be read right now",
            );
        }
    }
    tracing::warn!(user, "schema registry: authentication failed");
    unauthorized()
}

/// The user and password of an `Authorization: Basic base64(user:password)` header.
fn credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn unauthorized() -> Response {
    let mut response = super::error(StatusCode::UNAUTHORIZED, 401, "Unauthorized");
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"skiff-schema-registry\""),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_read_from_the_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(credentials(&headers), None);
        let value = format!("Basic {}", STANDARD.encode("alice:pa:ss"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&value).expect("ascii"));
        assert_eq!(credentials(&headers), Some(("alice".into(), "pa:ss".into())));
        for bad in ["Bearer abc", "Basic !!!", "Basic YWxpY2U="] {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(bad));
            assert_eq!(credentials(&headers), None, "{bad}");
        }
    }
}
