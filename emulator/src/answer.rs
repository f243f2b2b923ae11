//! What a route answers, before it becomes an HTTP response.

use serde_json::{Value, json};

/// What a portal route gives: its answer, or the error it answers with.
pub(crate) type Outcome = Result<Answer, Answer>;

/// An answer before it becomes an HTTP response.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) body: String,
    pub(crate) retry_after: Option<String>,
}

impl Answer {
    pub(crate) fn json(status: u16, body: Value) -> Answer {
        Answer {
            status,
            content_type: "application/json",
            body: body.to_string(),
            retry_after: None,
        }
    }

    pub(crate) fn error(status: u16, message: impl Into<String>) -> Answer {
        Answer::json(status, json!({ "error": message.into() }))
    }

    pub(crate) fn html(status: u16) -> Answer {
        Answer {
            status,
            content_type: "text/html; charset=utf-8",
            body: "<!DOCTYPE html><html><head><title>Sign in</title></head>\
                   <body><p>Sign in to your account</p></body></html>"
                .to_string(),
            retry_after: None,
        }
    }

    pub(crate) fn too_many(retry_after: Option<String>) -> Answer {
        Answer {
            status: 429,
            content_type: "text/plain",
            body: "TOO MANY REQUESTS".to_string(),
            retry_after,
        }
    }

    pub(crate) fn no_content() -> Answer {
        Answer {
            status: 204,
            content_type: "text/plain",
            body: String::new(),
            retry_after: None,
        }
    }
}

pub(crate) fn bad_request(message: impl Into<String>) -> Answer {
    Answer::error(400, message)
}

pub(crate) fn no_instance(id: &str) -> Answer {
    Answer::error(404, format!("no instance {id}"))
}
