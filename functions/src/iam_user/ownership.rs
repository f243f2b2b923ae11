//! What marks the user and its policy as this stack's: the ownership tags.

use aws_sdk_iam::types::Tag;

use crate::error::Error;
use crate::names::StackRef;

/// The tags of what the stack makes: its own, then the stack's `Tags`.
pub(super) fn tags(stack: &StackRef, more: &[(String, String)]) -> Vec<Tag> {
    stack
        .ownership_tags()
        .iter()
        .copied()
        .chain(more.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map(|(k, v)| tag(k, v))
        .collect()
}

pub(super) fn tag(key: &str, value: &str) -> Tag {
    Tag::builder()
        .key(key)
        .value(value)
        .build()
        .expect("key and value are set")
}

pub(super) fn owned(stack: &StackRef, tags: &[Tag]) -> bool {
    stack.owns(tags.iter().map(|t| (t.key(), t.value())))
}

pub(super) fn concurrent(operation: &'static str, name: &str) -> Error {
    Error::aws_step(
        operation,
        format!(
            "{name} keeps appearing and disappearing (changed concurrently); run the operation again"
        ),
    )
}
