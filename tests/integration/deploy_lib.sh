# deploy_lib.sh: shared by t_deploy*.sh (sourced after lib.sh).
# ---- signed test images put in place with SQL (the upload and signing
# helpers' APIs make them in production): uploads + image_chunks + images.
# deploy_images_init: once the database is up. Until the signing
# migration (010) is there, the two columns it adds are made here.
deploy_images_init() {
    ql_psql "ALTER TABLE images ADD COLUMN IF NOT EXISTS signature_der bytea,
             ADD COLUMN IF NOT EXISTS manifest_der bytea" >/dev/null
    tls_issue codesign ca client "quarklink code signing $QL_TEST"
    CS="$T/pki-work/codesign"
}
# make_image PROJECT NAME VERSION FILE STATUS [ENCFILE]: prints the image id.
make_image() {
    local project=$1 name=$2 version=$3 file=$4 status=$5 enc=${6:-}
    local up size sha pid key encflag=false
    [ -z "$enc" ] || encflag=true
    up=$(head -c 20 /dev/urandom | base32 | tr -d '=\n' | tr '[:upper:]' '[:lower:]' |
        head -c 26)
    size=$(stat -c %s "$file")
    sha=$(sha256sum "$file" | cut -d' ' -f1)
    pid=$(ql_psql "SELECT id FROM projects WHERE name = '$project'")
    key="ARRAY(SELECT coalesce((string_to_array('$version', '.'))[i], '0')::int
        FROM generate_series(1, 4) i)"
    printf '{"format":1,"project":"%s","image_id":0,"name":"%s","version":"%s","size":%s,"sha256":"%s"}' \
        "$project" "$name" "$version" "$size" "$sha" >"$T/$name.manifest.json"
    openssl cms -sign -binary -in "$file" -signer "$CS.crt" -inkey "$CS.key" \
        -outform DER -out "$T/$name.p7s" 2>>"$T/openssl.err" || hard_error "cms sign"
    openssl cms -sign -nodetach -binary -in "$T/$name.manifest.json" -signer "$CS.crt" \
        -inkey "$CS.key" -outform DER -out "$T/$name.manifest.der" 2>>"$T/openssl.err" ||
        hard_error "cms sign manifest"
    ql_psql "INSERT INTO uploads (id, project_id, image_name, version, version_key,
                 upload_length, upload_offset, created_by, expires_at, completed_at, encrypt)
             VALUES ('$up', $pid, '$name', '$version', $key, $size, $size, 'test',
                 now() + interval '1 day', now(), $encflag);
             INSERT INTO image_chunks (upload_id, variant, off, data)
                 SELECT '$up', 0, o, pg_read_binary_file('$file', o, least(1048576, $size - o))
                 FROM generate_series(0, $size - 1, 1048576) o;" >/dev/null ||
        hard_error "inserting the chunks of $name"
    if [ -n "$enc" ]; then
        local esize
        esize=$(stat -c %s "$enc")
        ql_psql "INSERT INTO image_chunks (upload_id, variant, off, data)
                 SELECT '$up', 1, o, pg_read_binary_file('$enc', o, least(1048576, $esize - o))
                 FROM generate_series(0, $esize - 1, 1048576) o" >/dev/null ||
            hard_error "inserting the encrypted chunks of $name"
    fi
    ql_psql "INSERT INTO images (project_id, name, version, version_key, upload_id, size,
                 sha256, status, uploaded_by, encrypt, signature_der, manifest_der)
             VALUES ($pid, '$name', '$version', $key, '$up', $size, decode('$sha', 'hex'),
                 '$status', 'test', $encflag,
                 pg_read_binary_file('$T/$name.p7s'), pg_read_binary_file('$T/$name.manifest.der'))
             RETURNING id"
}

