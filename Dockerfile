# syntax=docker/dockerfile:1
# ssmbak and s3bak as an image, for CI systems that run tools as images: the release binaries
# `cargo xtask dist` packs (glibc 2.17), on distroless's glibc base, one image per CPU from the
# same archives:
#
#   cargo xtask dist
#   docker buildx build --platform linux/amd64,linux/arm64 --build-arg VERSION=0.1.0 -t ssmbak .
#   docker run --rm ssmbak --version        # ssmbak; --entrypoint s3bak for s3bak
#
# The base is pinned by digest (the multi-arch index of gcr.io/distroless/cc-debian12:nonroot);
# checked by xtask/src/container.rs, which also builds and runs it where Docker is available.
ARG VERSION

FROM scratch AS archive-amd64
ARG VERSION
# ADD unpacks a local tar.gz.
ADD target/dist/ssmbak-${VERSION}-x86_64-unknown-linux-gnu.tar.gz /

FROM scratch AS archive-arm64
ARG VERSION
ADD target/dist/ssmbak-${VERSION}-aarch64-unknown-linux-gnu.tar.gz /

FROM archive-${TARGETARCH} AS archive

FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f
ARG VERSION
COPY --from=archive /ssmbak-${VERSION}-*/ssmbak /ssmbak-${VERSION}-*/s3bak /usr/local/bin/
USER nonroot
ENTRYPOINT ["/usr/local/bin/ssmbak"]
