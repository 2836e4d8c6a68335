//! The closed set of routes the service answers. Metric labels, access-log fields and
//! `Allow` headers come from here, never from the raw request: a client that sends a
//! made-up method or a random path must not create a new time series or a huge log line.

use poem::http::Method;
use poem_openapi::OpenApi;

use super::Api;

/// The label for everything outside the known set.
pub const OTHER: &str = "other";

/// One route: its template (the label), how it matches, and the methods it accepts.
#[derive(Debug)]
pub struct RouteEntry {
    template: String,
    /// The template's segments; `None` stands for a `{parameter}`.
    segments: Vec<Option<String>>,
    /// Also matches every path below the template (the Swagger UI's assets, the sandbox).
    prefix: bool,
    allow: String,
}

impl RouteEntry {
    fn new(template: &str, prefix: bool, methods: &[Method]) -> Self {
        let segments = split(template)
            .map(|segment| {
                let parameter = (segment.starts_with('{') && segment.ends_with('}'))
                    || segment.starts_with(':');
                (!parameter).then(|| segment.to_owned())
            })
            .collect();
        let mut allow: Vec<&str> = Vec::new();
        for method in methods {
            allow.push(method.as_str());
            // poem answers HEAD with the GET handler (headers only).
            if method == Method::GET && !methods.contains(&Method::HEAD) {
                allow.push("HEAD");
            }
        }
        Self {
            template: template.to_owned(),
            segments,
            prefix,
            allow: allow.join(", "),
        }
    }

    pub fn template(&self) -> &str {
        &self.template
    }

    /// The `Allow` header of a 405 on this route (RFC 9110 §15.5.6).
    pub fn allow(&self) -> &str {
        &self.allow
    }

    /// Whether `method` is one this route answers.
    pub fn allows(&self, method: &Method) -> bool {
        self.allow
            .split(", ")
            .any(|allowed| allowed == method.as_str())
    }

    fn matches(&self, path: &str) -> bool {
        let mut parts = split(path);
        for expected in &self.segments {
            match (parts.next(), expected) {
                (Some(part), Some(expected)) if part == expected => {}
                (Some(_), None) => {}
                _ => return false,
            }
        }
        self.prefix || parts.next().is_none()
    }
}

fn split(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|segment| !segment.is_empty())
}

#[derive(Debug)]
pub struct RouteTable {
    routes: Vec<RouteEntry>,
}

impl RouteTable {
    /// The operations of the OpenAPI document, the routes beside it, and the sandbox's
    /// when it is served.
    pub fn new(sandbox: bool) -> Self {
        let mut routes: Vec<RouteEntry> = <Api as OpenApi>::meta()
            .into_iter()
            .flat_map(|api| api.paths)
            .map(|path| {
                let methods: Vec<Method> = path
                    .operations
                    .iter()
                    .map(|operation| operation.method.clone())
                    .collect();
                RouteEntry::new(&path.path, false, &methods)
            })
            .collect();
        for fixed in ["/metrics", "/api/openapi.json", "/api/openapi.yaml"] {
            routes.push(RouteEntry::new(fixed, false, &[Method::GET]));
        }
        routes.push(RouteEntry::new("/api/docs", true, &[Method::GET]));
        if sandbox {
            // Simulated WeChat endpoints: one label; each declares its own method.
            routes.push(RouteEntry::new("/sandbox", true, &[]));
        }
        Self { routes }
    }

    /// The route a path belongs to, if any.
    pub fn find(&self, path: &str) -> Option<&RouteEntry> {
        self.routes.iter().find(|route| route.matches(path))
    }

    /// The metric label and access-log field for a path.
    pub fn label(&self, path: &str) -> &str {
        self.find(path).map_or(OTHER, RouteEntry::template)
    }
}

/// The metric label for a method: the standard ones, everything else one bucket.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => OTHER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_and_fixed_routes_are_known_and_everything_else_is_other() {
        let table = RouteTable::new(false);
        assert_eq!(table.label("/api/v1/auth/login"), "/api/v1/auth/login");
        assert_eq!(table.label("/api/docs/"), "/api/docs");
        assert_eq!(table.label("/api/docs/swagger-ui.css"), "/api/docs");
        assert_eq!(table.label("/metrics"), "/metrics");
        assert_eq!(table.label("/api/v1/auth/login/x"), OTHER);
        assert_eq!(table.label("/%ff%fe"), OTHER);
        assert_eq!(table.label("/sandbox/encrypt"), OTHER);
        assert_eq!(RouteTable::new(true).label("/sandbox/encrypt"), "/sandbox");
    }

    #[test]
    fn templates_with_parameters_match_one_segment() {
        let route = RouteEntry::new("/api/v1/things/{id}", false, &[Method::GET]);
        assert!(route.matches("/api/v1/things/42"));
        assert!(!route.matches("/api/v1/things"));
        assert!(!route.matches("/api/v1/things/42/more"));
        assert_eq!(route.allow(), "GET, HEAD");
    }

    #[test]
    fn made_up_methods_share_one_label() {
        let made_up = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&made_up), OTHER);
        assert_eq!(method_label(&Method::POST), "POST");
    }
}
