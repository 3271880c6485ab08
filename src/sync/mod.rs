//! PRM sync: adapters, credentials, pull and push.
