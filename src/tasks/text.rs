//! Values written as strings in a task file and parsed on the spot. Parsing inside the visitor,
//! rather than after it returns, lets serde_yaml mark an error with the string's own line.

use std::{fmt, marker::PhantomData};

use serde::{de, Deserializer};

/// Deserializes a string and parses it with `T`'s `TryFrom<&str>`.
pub fn parse<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: for<'a> TryFrom<&'a str, Error = String>,
{
    deserializer.deserialize_str(Parsed(PhantomData))
}

struct Parsed<T>(PhantomData<T>);

impl<T> de::Visitor<'_> for Parsed<T>
where
    T: for<'a> TryFrom<&'a str, Error = String>,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
        T::try_from(text).map_err(E::custom)
    }
}
