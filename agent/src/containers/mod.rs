//! What logship knows about Docker containers, shared by the two ways of reading their logs:
//! the `docker` source asks the Docker API ([`ContainerInfo::from_inspect`]), the file source
//! with `decoder = "docker"` reads each container's `config.v2.json`
//! ([`ContainerConfigCache`]). Both turn a [`ContainerInfo`] into labels with the same
//! [`LabelPlan`], so the two paths ship identical streams.

mod config_file;
mod metadata;

pub use config_file::{CONFIG_FILE, ContainerConfigCache, ContainerConfigError, parse_config};
pub use metadata::{
    Attribute, COMPOSE_PROJECT_LABEL, COMPOSE_SERVICE_LABEL, ContainerInfo, LabelPlan, LogStream,
    StreamLabels, UnknownAttribute,
};
