//! Variant names of serde enums, read through serde itself.
//!
//! Commands and events are usually enums. Their names (for the untyped path, stored event types
//! and the model listing) come from serde: a value's name is the variant it serializes as, and a
//! type's names are the variants its `Deserialize` impl lists. Both honour `#[serde(rename)]`.

use std::fmt;

use serde::de::{self, Deserialize, Visitor};
use serde::ser::{self, Serialize};

/// Returns the serde variant name `value` serializes as, or `None` when it is not an externally
/// tagged enum variant.
pub(crate) fn variant_name<T: Serialize + ?Sized>(value: &T) -> Option<&'static str> {
    match value.serialize(VariantNameSerializer) {
        Ok(name) => Some(name),
        Err(Found::Variant(name)) => Some(name),
        Err(Found::NotAnEnum) => None,
    }
}

/// Returns the variant names listed by `T`'s `Deserialize` impl, or an empty list when `T` is
/// not an externally tagged enum.
pub(crate) fn variant_names<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    match T::deserialize(VariantsProbe) {
        Err(Probe::Variants(names)) => names,
        _ => &[],
    }
}

#[derive(Debug)]
enum Found {
    Variant(&'static str),
    NotAnEnum,
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("variant name probe")
    }
}

impl std::error::Error for Found {}

impl ser::Error for Found {
    fn custom<M: fmt::Display>(_msg: M) -> Self {
        Found::NotAnEnum
    }
}

struct VariantNameSerializer;

macro_rules! not_an_enum {
    ($($method:ident($($ty:ty),*)),* $(,)?) => {
        $(
            fn $method(self, $(_: $ty),*) -> Result<Self::Ok, Self::Error> {
                Err(Found::NotAnEnum)
            }
        )*
    };
}

impl ser::Serializer for VariantNameSerializer {
    type Ok = &'static str;
    type Error = Found;
    type SerializeSeq = ser::Impossible<&'static str, Found>;
    type SerializeTuple = ser::Impossible<&'static str, Found>;
    type SerializeTupleStruct = ser::Impossible<&'static str, Found>;
    type SerializeTupleVariant = ser::Impossible<&'static str, Found>;
    type SerializeMap = ser::Impossible<&'static str, Found>;
    type SerializeStruct = ser::Impossible<&'static str, Found>;
    type SerializeStructVariant = ser::Impossible<&'static str, Found>;

    not_an_enum!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
    );

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<Self::Ok, Self::Error> {
        Err(Found::NotAnEnum)
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Self::Ok, Self::Error> {
        Ok(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Self::Ok, Self::Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: &T,
    ) -> Result<Self::Ok, Self::Error> {
        Ok(variant)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Self::Error> {
        Err(Found::NotAnEnum)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Self::Error> {
        Err(Found::NotAnEnum)
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Self::Error> {
        Err(Found::NotAnEnum)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Self::Error> {
        // Stop before the fields: the name is all that is needed.
        Err(Found::Variant(variant))
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Self::Error> {
        Err(Found::NotAnEnum)
    }

    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, Self::Error> {
        Err(Found::NotAnEnum)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Self::Error> {
        Err(Found::Variant(variant))
    }
}

#[derive(Debug)]
enum Probe {
    Variants(&'static [&'static str]),
    NotAnEnum,
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("variant list probe")
    }
}

impl std::error::Error for Probe {}

impl de::Error for Probe {
    fn custom<M: fmt::Display>(_msg: M) -> Self {
        Probe::NotAnEnum
    }
}

struct VariantsProbe;

impl<'de> de::Deserializer<'de> for VariantsProbe {
    type Error = Probe;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(Probe::NotAnEnum)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        Err(Probe::Variants(variants))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Serialize, Deserialize)]
    enum Command {
        Add(u32),
        Reset,
        Move {
            x: i32,
            y: i32,
        },
        Pair(u8, u8),
        #[serde(rename = "renamed")]
        Other,
    }

    #[test]
    fn names_of_values() {
        assert_eq!(variant_name(&Command::Add(1)), Some("Add"));
        assert_eq!(variant_name(&Command::Reset), Some("Reset"));
        assert_eq!(variant_name(&Command::Move { x: 1, y: 2 }), Some("Move"));
        assert_eq!(variant_name(&Command::Pair(1, 2)), Some("Pair"));
        assert_eq!(variant_name(&Command::Other), Some("renamed"));
        assert_eq!(variant_name(&5u8), None);
    }

    #[test]
    fn names_of_types() {
        assert_eq!(
            variant_names::<Command>(),
            &["Add", "Reset", "Move", "Pair", "renamed"]
        );
        assert!(variant_names::<u32>().is_empty());
    }
}
