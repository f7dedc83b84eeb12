# A small example build for the quick start: no nixpkgs needed.
# A fixed-output "source", a library built from it, and a program that uses both.
{ salt ? "" }:
let
  base = { system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/usr/bin:/bin"; };
  src = derivation (base // {
    name = "hello-src.txt";
    args = [ "-c" "printf 'Hello, provenance!' > $out" ];
    outputHashMode = "flat"; outputHashAlgo = "sha256";
    outputHash = builtins.hashString "sha256" "Hello, provenance!";
    url = "https://example.org/hello-src.txt";
  });
  greeting = derivation (base // {
    name = "greeting-1.0"; inherit salt;
    args = [ "-c" "mkdir -p $out/share; cat ${src} > $out/share/greeting" ];
  });
in derivation (base // {
  name = "hello-1.0"; inherit salt;
  outputs = [ "out" "doc" ];
  args = [ "-c" ''
    mkdir -p $out/bin $doc
    printf '#!/bin/sh\ncat ${greeting}/share/greeting; echo\n' > $out/bin/hello
    chmod +x $out/bin/hello
    echo "hello: prints a greeting" > $doc/README
  '' ];
})
