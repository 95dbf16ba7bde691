# deploy_lib.sh: shared by t_deploy*.sh (sourced after lib.sh).
# ---- test images made as users make them: uploaded with tus (curl) and,
# when asked, signed (and encrypted) through the API with the project's
# code-signing key on the token.
# shellcheck source=img.sh
. "$(dirname "${BASH_SOURCE[0]}")/img.sh"
# deploy_images_init: once the daemon is up and api_admin_session has run.
deploy_images_init() { :; }
# make_image PROJECT NAME VERSION FILE STATUS [ENCRYPT]: prints the image id.
# STATUS signed signs it; ENCRYPT true uploads it to be encrypted.
make_image() {
    local project=$1 name=$2 version=$3 file=$4 status=$5 enc=${6:-false} tok
    tok=$(api_token_new operator "$project")
    img_tus_upload "$tok" "$project" "$name" "$version" "$file" "$enc" "" 8000000 >&2
    [ -n "$IMG_ID" ] || hard_error "uploading $name $version"
    if [ "$status" = signed ]; then
        img_sign "$project" "$IMG_ID" '' >&2
        [ "$HTTP_STATUS" = 200 ] || hard_error "signing $name $version: HTTP $HTTP_STATUS $(cat "$BODY")"
    fi
    printf '%s\n' "$IMG_ID"
}

