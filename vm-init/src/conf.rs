//! The guest's instructions, written by `cargo xtask test-vm` into the initramfs as
//! `/xtask-vm.conf`: one `key value` per line, in the order they apply.
//!
//! ```text
//! module /modules/00-virtio_ring.ko     (load at boot, in this order)
//! share hostroot                        (mount the host's / from this 9p tag, else stay in the initramfs)
//! test /w/uts-demo<TAB>/w/target/debug/deps/uts_demo-3d4e5f   (test 0: package dir, executable)
//! arg --exact                           (passed to every test binary)
//! env NS_TEST_SCALE 0.2                 (set for every test binary)
//! run root 0 1                          (run 0: name, uid, NS_REQUIRE_PRIV)
//! run user 65534 userns                 (run 1)
//! shell /bin/sh                         (instead of the tests: an interactive shell)
//! ```
//!
//! Which test runs as which run, and in which guest, is not in the file: each guest asks the host for
//! its next job over the control port (`job 1 0` is test 0 as run 1), so that several guests share one
//! queue.

/// One test executable and the directory it runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Test {
    pub package_dir: String,
    pub executable: String,
}

/// One way of running a test: as which user, demanding which privileges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub name: String,
    pub uid: u32,
    pub require_priv: String,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Conf {
    pub modules: Vec<String>,
    pub share: Option<String>,
    pub tests: Vec<Test>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub runs: Vec<Run>,
    pub shell: Option<String>,
}

impl Conf {
    pub fn parse(text: &str) -> Result<Conf, String> {
        let mut conf = Conf::default();
        for line in text.lines().filter(|l| !l.is_empty()) {
            let (key, value) = line
                .split_once(' ')
                .ok_or_else(|| format!("malformed line {line:?}"))?;
            match key {
                "module" => conf.modules.push(value.to_owned()),
                "share" => conf.share = Some(value.to_owned()),
                "arg" => conf.args.push(value.to_owned()),
                "shell" => conf.shell = Some(value.to_owned()),
                "env" => {
                    let (name, val) = value
                        .split_once(' ')
                        .ok_or_else(|| format!("env line needs a name and a value: {line:?}"))?;
                    conf.env.push((name.to_owned(), val.to_owned()));
                }
                "test" => {
                    let (dir, exe) = value
                        .split_once('\t')
                        .ok_or_else(|| format!("test line without a tab: {line:?}"))?;
                    conf.tests.push(Test {
                        package_dir: dir.to_owned(),
                        executable: exe.to_owned(),
                    });
                }
                "run" => {
                    let words: Vec<&str> = value.split(' ').collect();
                    let [name, uid, require] = words[..] else {
                        return Err(format!("run line needs name, uid and NS_REQUIRE_PRIV: {line:?}"));
                    };
                    conf.runs.push(Run {
                        name: name.to_owned(),
                        uid: uid.parse().map_err(|_| format!("bad uid in {line:?}"))?,
                        require_priv: require.to_owned(),
                    });
                }
                _ => return Err(format!("unknown key {key:?}")),
            }
        }
        Ok(conf)
    }

    /// The test and the run a `job RUN TEST` line from the host names.
    pub fn job(&self, line: &str) -> Result<(&Test, &Run), String> {
        let words: Vec<&str> = line.split(' ').collect();
        let ["job", run, test] = words[..] else {
            return Err(format!("malformed job {line:?}"));
        };
        let index = |text: &str| text.parse::<usize>().ok();
        let run = index(run).and_then(|r| self.runs.get(r));
        let test = index(test).and_then(|t| self.tests.get(t));
        match (test, run) {
            (Some(test), Some(run)) => Ok((test, run)),
            _ => Err(format!("no such test or run in {line:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = "module /modules/virtio.ko\nmodule /modules/9p.ko\nshare hostroot\n\
         test /w/a\t/w/target/debug/deps/a-1 b\narg --exact\narg my test\nenv NS_TEST_SCALE 0.2\n\
         run root 0 1\nrun user 65534 userns\n";

    #[test]
    fn parses_every_key() {
        let conf = Conf::parse(FULL).unwrap();
        assert_eq!(conf.modules, ["/modules/virtio.ko", "/modules/9p.ko"]);
        assert_eq!(conf.share.as_deref(), Some("hostroot"));
        assert_eq!(conf.tests[0].executable, "/w/target/debug/deps/a-1 b");
        assert_eq!(conf.args, ["--exact", "my test"]);
        assert_eq!(conf.env, [("NS_TEST_SCALE".into(), "0.2".into())]);
        assert_eq!(
            conf.runs[1],
            Run {
                name: "user".into(),
                uid: 65534,
                require_priv: "userns".into()
            }
        );
        assert_eq!(conf.shell, None);
    }

    #[test]
    fn a_job_names_a_run_and_a_test_by_index() {
        let conf = Conf::parse(FULL).unwrap();
        let (test, run) = conf.job("job 1 0").unwrap();
        assert_eq!((test.package_dir.as_str(), run.name.as_str()), ("/w/a", "user"));
        assert!(conf.job("job 2 0").is_err(), "there is no run 2");
        assert!(conf.job("job 0 1").is_err(), "there is no test 1");
        assert!(conf.job("job 0").is_err());
        assert!(conf.job("stop").is_err());
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        assert!(Conf::parse("frobnicate 1\n").is_err());
        assert!(Conf::parse("test /no/tab\n").is_err());
        assert!(Conf::parse("run root zero 1\n").is_err());
        assert!(Conf::parse("run root 0\n").is_err());
        assert!(Conf::parse("env NS_TEST_SCALE\n").is_err());
    }
}
