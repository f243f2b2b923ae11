//! What marks the user and its policy as this stack's: the ownership tags.

use aws_sdk_iam::types::Tag;

use crate::error::Error;
use crate::names::StackRef;

pub(super) fn tags(stack: &StackRef) -> Vec<Tag> {
    stack
        .ownership_tags()
        .iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(*k)
                .value(*v)
                .build()
                .expect("key and value are set")
        })
        .collect()
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
