//! The subset of pprof's `profile.proto` a CPU profile needs, written by hand for `prost` so
//! the build needs neither `protoc` nor a second `prost` version.

/// `perftools.profiles.Profile`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Profile {
    /// What each sample value measures.
    #[prost(message, repeated, tag = "1")]
    pub sample_type: Vec<ValueType>,
    /// One per distinct stack.
    #[prost(message, repeated, tag = "2")]
    pub sample: Vec<Sample>,
    /// Code locations referenced by samples.
    #[prost(message, repeated, tag = "4")]
    pub location: Vec<Location>,
    /// Functions referenced by locations.
    #[prost(message, repeated, tag = "5")]
    pub function: Vec<Function>,
    /// Every string; index 0 must be "".
    #[prost(string, repeated, tag = "6")]
    pub string_table: Vec<String>,
    /// Profile start, ns since the epoch.
    #[prost(int64, tag = "9")]
    pub time_nanos: i64,
    /// Profile length in ns.
    #[prost(int64, tag = "10")]
    pub duration_nanos: i64,
    /// The kind of events between samples.
    #[prost(message, optional, tag = "11")]
    pub period_type: Option<ValueType>,
    /// Events between samples.
    #[prost(int64, tag = "12")]
    pub period: i64,
}

/// `ValueType`: string-table indices of a type and unit.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueType {
    /// Type, such as "cpu".
    #[prost(int64, tag = "1")]
    pub r#type: i64,
    /// Unit, such as "nanoseconds".
    #[prost(int64, tag = "2")]
    pub unit: i64,
}

/// `Sample`: a stack (leaf first) and its values.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    /// Location ids, leaf first.
    #[prost(uint64, repeated, tag = "1")]
    pub location_id: Vec<u64>,
    /// One value per `sample_type`.
    #[prost(int64, repeated, tag = "2")]
    pub value: Vec<i64>,
    /// Labels such as the thread name.
    #[prost(message, repeated, tag = "3")]
    pub label: Vec<Label>,
}

/// `Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    /// String-table index of the key.
    #[prost(int64, tag = "1")]
    pub key: i64,
    /// String-table index of the value.
    #[prost(int64, tag = "2")]
    pub str: i64,
}

/// `Location`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Location {
    /// Unique, non-zero.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// The function and line at this location.
    #[prost(message, repeated, tag = "4")]
    pub line: Vec<Line>,
}

/// `Line`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Line {
    /// The function's id.
    #[prost(uint64, tag = "1")]
    pub function_id: u64,
    /// Source line, 0 when unknown.
    #[prost(int64, tag = "2")]
    pub line: i64,
}

/// `Function`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Function {
    /// Unique, non-zero.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// Demangled name.
    #[prost(int64, tag = "2")]
    pub name: i64,
    /// Mangled name.
    #[prost(int64, tag = "3")]
    pub system_name: i64,
    /// Source file.
    #[prost(int64, tag = "4")]
    pub filename: i64,
}
