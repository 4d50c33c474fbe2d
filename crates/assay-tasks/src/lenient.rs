//! YAML read as lm-eval's loader (PyYAML) reads it where `serde_yaml` refuses: a key given twice
//! in one mapping keeps its last value (at its first place), instead of an error. lm-eval's task
//! library has 59 files with such keys (filter steps, `metadata`).

use serde::de::{
    Deserialize, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};
use serde_yaml::value::{Tag, TaggedValue};
use serde_yaml::{Mapping, Value as Yaml};

/// The YAML document `text` as a value, duplicate keys resolved as PyYAML resolves them.
pub(crate) fn parse(text: &str) -> Result<Yaml, serde_yaml::Error> {
    Lenient::deserialize(serde_yaml::Deserializer::from_str(text)).map(|l| l.0)
}

/// `T` from `text`; where the strict reading fails on a repeated key only, from the lenient
/// value (without the line number, which the value no longer has).
pub(crate) fn from_str<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, serde_yaml::Error> {
    match serde_yaml::from_str(text) {
        Err(e) if e.to_string().contains("duplicate") => serde_yaml::from_value(parse(text)?),
        other => other,
    }
}

struct Lenient(Yaml);

impl<'de> Deserialize<'de> for Lenient {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LenientVisitor)
    }
}

struct LenientVisitor;

impl<'de> Visitor<'de> for LenientVisitor {
    type Value = Lenient;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Lenient, E> {
        Ok(Lenient(Yaml::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Lenient, E> {
        Ok(Lenient(Yaml::Number(v.into())))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Lenient, E> {
        Ok(Lenient(Yaml::Number(v.into())))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Lenient, E> {
        Ok(Lenient(Yaml::Number(v.into())))
    }

    fn visit_str<E>(self, v: &str) -> Result<Lenient, E> {
        Ok(Lenient(Yaml::String(v.to_string())))
    }

    fn visit_string<E>(self, v: String) -> Result<Lenient, E> {
        Ok(Lenient(Yaml::String(v)))
    }

    fn visit_unit<E>(self) -> Result<Lenient, E> {
        Ok(Lenient(Yaml::Null))
    }

    fn visit_none<E>(self) -> Result<Lenient, E> {
        Ok(Lenient(Yaml::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Lenient, D::Error> {
        Lenient::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Lenient, A::Error> {
        let mut items = Vec::new();
        while let Some(Lenient(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Lenient(Yaml::Sequence(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Lenient, A::Error> {
        let mut mapping = Mapping::new();
        while let Some((Lenient(key), Lenient(value))) = map.next_entry()? {
            mapping.insert(key, value);
        }
        Ok(Lenient(Yaml::Mapping(mapping)))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Lenient, A::Error> {
        let (tag, contents): (String, _) = data.variant()?;
        let Lenient(value) = contents.newtype_variant()?;
        Ok(Lenient(Yaml::Tagged(Box::new(TaggedValue {
            tag: Tag::new(tag),
            value,
        }))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_keep_the_last_value_and_tags_survive() {
        let value = parse("a: 1\nb: !function utils.f\na: 2\nc:\n  - x: 1\n    x: 3\n").unwrap();
        let expected: Yaml =
            serde_yaml::from_str("a: 2\nb: !function utils.f\nc:\n  - x: 3\n").unwrap();
        assert_eq!(value, expected);
        assert!(serde_yaml::from_str::<Yaml>("a: 1\na: 2\n").is_err());
        let err = parse("a: [1\n").unwrap_err();
        assert!(err.location().is_some(), "{err}");
    }
}
